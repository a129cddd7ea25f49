r"""Draws the views a config's view groups make, as a PNG grid.

  python -m jax_ssl.data.show --config=configs/simclr_tiny.py --out=views.png
  python -m jax_ssl.data.show --config=configs/swav_tiny.py --out=views.png \
      --images=8 --config.data.augment.solarize_prob=0.5

One row per training image (spread evenly over the config's training split), one column
per view: first the image itself, scaled to fit its cell, then every view `pipeline`
makes of it for pretraining, with the same ops, group by group in `config.data.views`
('view1' and 'view2' for two-view methods; the global then the local crops for SwAV's
multi-crop), after the group's view transform, one column per part it makes (RotNet's 4
rotations, Jigsaw's 9 tiles in their shuffled order), each with its integer targets
written on it (a rotation's index, a tile's grid position, and on the last part the
permutation's or the neighbour's index) and the names of its other targets
(colorization's 'ab' on the L channel it sees, inpainting's 'mask target' on the masked
view); a target that is an image of its own (CMC's ab channels, drawn as their colours)
gets a column after its group's, and CPC's patches are parts. A cell is the view size
times the smallest whole factor that reaches 96 pixels; each view is enlarged by the
largest whole factor that fits its cell, with nearest-neighbour sampling so every view
pixel stays a sharp square (local crops, being smaller, get a larger factor and fill
about as much of their cell as the global crops).
Column names are written above the grid. Any config field can be overridden with
--config.<field>=<value>, as with main.py.
"""
import math
import os
import sys

from absl import flags
import jax
from ml_collections import config_flags
import numpy as np
import tensorflow as tf

from jax_ssl.data import pipeline, sources, views as views_lib

MIN_CELL = 96      # the smallest cell side, in pixels
GAP = 4            # pixels between cells and around the grid
LABEL_SCALE = 2    # each font pixel is a LABEL_SCALE x LABEL_SCALE square
LABEL_HEIGHT = 5 * LABEL_SCALE
BACKGROUND = 48    # dark gray, so white and black views both stand out
TEXT = 255

# A 3 x 5 pixel font for the column names: five rows of three pixels each.
_FONT = {
    'A': '.#. #.# ### #.# #.#', 'B': '##. #.# ##. #.# ##.', 'C': '.## #.. #.. #.. .##',
    'E': '### #.. ##. #.. ###', 'G': '.## #.. #.# #.# .##', 'I': '### .#. .#. .#. ###',
    'L': '#.. #.. #.. #.. ###', 'N': '##. #.# #.# #.# #.#', 'O': '.#. #.# #.# #.# .#.',
    'R': '##. #.# ##. #.# #.#', 'V': '#.# #.# #.# #.# .#.', 'W': '#.# #.# #.# ### #.#',
    '0': '### #.# #.# #.# ###', '1': '.#. ##. .#. .#. ###', '2': '##. ..# .#. #.. ###',
    '3': '##. ..# .#. ..# ##.', '4': '#.# #.# ### ..# ..#', '5': '### #.. ##. ..# ##.',
    '6': '.## #.. ### #.# ###', '7': '### ..# .#. .#. .#.', '8': '### #.# ### #.# ###',
    '9': '### #.# ### ..# ##.', ' ': '... ... ... ... ...',
    'D': '##. #.# #.# #.# ##.', 'F': '### #.. ##. #.. #..', 'H': '#.# #.# ### #.# #.#',
    'J': '..# ..# ..# #.# .#.', 'K': '#.# #.# ##. #.# #.#', 'M': '#.# ### ### #.# #.#',
    'P': '##. #.# ##. #.. #..', 'Q': '.#. #.# #.# ##. .##', 'S': '.## #.. .#. ..# ##.',
    'T': '### .#. .#. .#. .#.', 'U': '#.# #.# #.# #.# ###', 'X': '#.# #.# .#. #.# #.#',
    'Y': '#.# #.# .#. .#. .#.', 'Z': '### ..# .#. #.. ###', '_': '... ... ... ... ###',
}


def _glyph(char):
  rows = _FONT.get(char.upper(), _FONT[' ']).split()
  return np.array([[pixel == '#' for pixel in row] for row in rows], bool)


def draw_text(canvas, text, top, left):
  """Writes `text` in TEXT colour into uint8 canvas [H, W, 3], clipped to it."""
  for i, char in enumerate(text):
    mask = np.kron(_glyph(char), np.ones((LABEL_SCALE, LABEL_SCALE), bool))
    x = left + i * 4 * LABEL_SCALE
    region = canvas[top:top + mask.shape[0], x:x + mask.shape[1]]
    region[mask[:region.shape[0], :region.shape[1]]] = TEXT


def enlarge(image, factor):
  """Nearest-neighbour upscaling of [h, w, c] by a whole factor."""
  return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def fit_to_cell(image, cell):
  """uint8 [h, w, 3] -> [cell, cell, 3]: scaled to fit, centred on BACKGROUND.

  Images no larger than the cell are enlarged by the largest whole factor
  (nearest-neighbour); larger ones are shrunk with an antialiased resize.
  """
  height, width = image.shape[:2]
  if max(height, width) <= cell:
    image = enlarge(image, cell // max(height, width))
  else:
    scale = cell / max(height, width)
    size = [max(1, round(height * scale)), max(1, round(width * scale))]
    image = tf.image.resize(image, size, antialias=True).numpy()
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
  out = np.full((cell, cell, 3), BACKGROUND, np.uint8)
  top, left = (cell - image.shape[0]) // 2, (cell - image.shape[1]) // 2
  out[top:top + image.shape[0], left:left + image.shape[1]] = image
  return out


def cell_size(data_config):
  """The side of a grid cell: the view size times a whole factor, >= MIN_CELL."""
  size = data_config.image_size
  return size * math.ceil(MIN_CELL / size)


def cell_origin(row, column, cell):
  """(top, left) of cell (row, column) in the grid; row 0 is the first image."""
  return (2 * GAP + LABEL_HEIGHT + row * (cell + GAP), GAP + column * (cell + GAP))


def _columns(views):
  """[(name, float [s, s, 3])] in the groups' order: 'view1', 'global 2', ..."""
  columns = []
  for name, value in views.items():
    value = np.asarray(value)
    if value.ndim == 3:
      columns.append((name, value))
    else:
      value = value.reshape((-1,) + value.shape[-3:])
      columns.extend((f'{name} {i + 1}', v) for i, v in enumerate(value))
  return columns


def _transformed(groups, views, seed, row):
  """The views after their groups' view transforms, and the text to write on each column:
  a transform's integer targets, one per part on each part (a tile's grid position, a
  rotation's index), a single one on the group's last column (a permutation's index, a
  neighbour's position), and there too the names of targets that are not integers (an
  image, a mask)."""
  out, texts = {}, []
  for group in groups:
    value = np.asarray(views[group.name], np.float32)
    if not group.transform:
      out[group.name] = value
      texts += [''] * (1 if value.ndim == 3 else len(value))
      continue
    from jax_ssl.data import transforms  # noqa: PLC0415  (JAX only for view transforms)
    fn = jax.jit(transforms.parse(group.transform))
    each = value[None] if value.ndim == 3 else value
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), row), len(each))
    for view, key in zip(each, keys):
      result = jax.device_get(fn(view, key))
      parts = result.pop('image')
      parts = parts[None] if parts.ndim == 3 else parts
      labels = [[] for _ in parts]
      for name, target in result.items():
        if not np.issubdtype(target.dtype, np.integer):  # an image-like target: its name
          labels[-1].append(name)
          continue
        if target.shape == (len(parts),):
          for part, number in zip(labels, target):
            part.append(str(number))
        elif target.ndim == 0:
          labels[-1].append(str(target))
      out.setdefault(group.name, []).extend(parts)
      texts += [' '.join(label) for label in labels]
      for name, draw in transforms.DRAWN_TARGETS.items():  # CMC's ab channels
        if name in result:
          out.setdefault(f'{group.name}_{name}', []).append(draw(result[name]))
          texts.append('')
    if value.ndim == 3:  # one view: its image, and a drawn target's, named as is
      for name in [group.name] + [f'{group.name}_{n}' for n in transforms.DRAWN_TARGETS]:
        if len(out.get(name, ())) == 1:
          out[name] = out[name][0]
  return {name: np.stack(value) if isinstance(value, list) else value
          for name, value in out.items()}, texts


def _examples(source, count):
  """Up to `count` training examples spread over the split, as the pipeline reads them.

  Strided sharding (process k of n) reads only the chosen files of a folder.
  """
  stride = max(1, source.num_train // count)
  return iter(source.dataset('train', 0, stride, decoded=False))


def render(config, num_images=6, seed=0):
  """The grid, uint8 [H, W, 3], and its column names."""
  data_config = config.data
  pipeline.check_data_config(data_config)
  source = sources.make_source(data_config)
  make_views = pipeline._views_of(data_config)  # pylint: disable=protected-access
  groups = views_lib.view_groups(data_config)
  key = tf.constant([seed, 0], tf.int64)
  cell = cell_size(data_config)
  rows, names = [], None
  for example in _examples(source, num_images):
    try:
      image = (sources.decode(example['encoded']) if 'encoded' in example
               else example['image']).numpy()
      views = make_views(example, tf.random.experimental.stateless_fold_in(key, len(rows)))
    except tf.errors.InvalidArgumentError:  # a corrupt file: take the next one
      continue
    views, texts = _transformed(groups, views, seed, len(rows))
    columns = _columns(views)
    names = ['original'] + [name for name, _ in columns]
    row = [fit_to_cell(image, cell)]
    for (_, view), text in zip(columns, texts):
      view = np.round(np.clip(view, 0, 1) * 255).astype(np.uint8)
      row.append(fit_to_cell(view, cell))
      draw_text(row[-1], text, 1, 1)
    rows.append(row)
    if len(rows) == num_images:
      break
  if not rows:
    raise ValueError(f'no image of {source.name} decoded.')

  height = cell_origin(len(rows), 0, cell)[0]
  width = cell_origin(0, len(names), cell)[1]
  grid = np.full((height, width, 3), BACKGROUND, np.uint8)
  for c, name in enumerate(names):
    draw_text(grid, name, GAP, cell_origin(0, c, cell)[1])
  for r, row in enumerate(rows):
    for c, image in enumerate(row):
      top, left = cell_origin(r, c, cell)
      grid[top:top + cell, left:left + cell] = image
  return grid, names


def _parse(argv):
  """A fresh set of flags for each call, so main() can run more than once."""
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file(
      'config', None, 'An ml_collections config file, e.g. configs/simclr_tiny.py.',
      flag_values=flag_values, lock_config=True, sys_argv=list(argv))
  flags.DEFINE_string('out', None, 'Where to write the PNG.', flag_values=flag_values)
  flags.DEFINE_integer('images', 6, 'How many training images (rows).', lower_bound=1,
                       flag_values=flag_values)
  flags.DEFINE_integer('seed', 0, 'Seed of the augmentations.', flag_values=flag_values)
  flags.mark_flags_as_required(['config', 'out'], flag_values=flag_values)
  try:
    rest = flag_values(argv)
    if len(rest) > 1:
      raise flags.Error(f'unexpected arguments: {rest[1:]}')
  except flags.Error as e:
    raise SystemExit(f'{e}\n\n{__doc__}\n{flag_values.get_help()}') from None
  return flag_values


def main(argv):
  """Parses argv (argv[0] is the program), writes the grid; returns its column names."""
  flag_values = _parse(argv)
  try:  # tf.data runs on the host; TF must not take accelerator memory
    tf.config.set_visible_devices([], 'GPU')
  except RuntimeError:  # TF already started (e.g. under a test runner)
    pass
  grid, names = render(flag_values.config, flag_values.images, flag_values.seed)
  out = flag_values.out
  if os.path.dirname(out):
    tf.io.gfile.makedirs(os.path.dirname(out))
  tf.io.write_file(out, tf.io.encode_png(grid))
  cell = cell_size(flag_values.config.data)
  rows = (grid.shape[0] - cell_origin(0, 0, cell)[0]) // (cell + GAP)
  print(f'{out}: {grid.shape[1]} x {grid.shape[0]} pixels, {rows} images of '
        f'{len(names)} columns ({", ".join(names)}), cells of {cell} pixels')
  return names


if __name__ == '__main__':
  main(sys.argv)
