"""The view grid: layout, the originals, and the very views the pipeline makes."""
from absl import flags
from ml_collections import config_flags
import numpy as np
import pytest
import tensorflow as tf

from jax_ssl.data import pipeline, show, sources


def read_png(path):
  return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


def cell(grid, row, column, size):
  top, left = show.cell_origin(row, column, size)
  return grid[top:top + size, left:left + size]


def views_of(config, image, row, seed=0):
  """The views show.py should draw for row `row`, as uint8."""
  make_views = pipeline._views_of(config.data)
  key = tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64), row)
  views = make_views({'image': tf.constant(image), 'label': tf.constant(0)}, key)
  return [np.round(np.clip(view, 0, 1) * 255).astype(np.uint8)
          for _, view in show._columns(views)]


def load_config(path, *overrides):
  values = flags.FlagValues()
  argv = ['x', f'--config={path}', *overrides]
  config_flags.DEFINE_config_file('config', None, '', flag_values=values, sys_argv=argv)
  values(argv)
  return values.config


@pytest.mark.parametrize('path,overrides,columns', [
    ('configs/simclr_tiny.py', [], ['original', 'view1', 'view2']),
    ('configs/swav_tiny.py', ['--config.data.views.local.count=1'],
     ['original', 'global 1', 'global 2', 'local']),
])
def test_grid_shows_each_image_and_its_views(tmp_path, path, overrides, columns):
  out = tmp_path / 'views.png'
  names = show.main(['show', f'--config={path}', f'--out={out}', '--images=2', *overrides])
  assert names == columns
  grid = read_png(out)
  size = 112  # 28-pixel digits, enlarged 4 times to reach 96 pixels
  assert grid.shape == (show.cell_origin(2, 0, size)[0], show.cell_origin(0, len(columns), size)[1], 3)

  config = load_config(path, *overrides)
  images, _ = sources.mnist_splits()['train']
  for row, index in enumerate([0, len(images) // 2]):  # spread over the split
    np.testing.assert_array_equal(cell(grid, row, 0, size), show.enlarge(images[index], 4))
    views = views_of(config, images[index], row)
    for column, view in enumerate(views, start=1):
      factor = size // view.shape[0]  # 4 for 28-pixel views, 8 for 14-pixel local crops
      np.testing.assert_array_equal(cell(grid, row, column, size), show.enlarge(view, factor))
    # A view may be the image itself (a whole-image crop, unflipped, colour untouched:
    # about 1 in 1,000 at 28 px), but not all of them.
    assert not all(np.array_equal(view, images[index]) for view in views)
  # A name above every column, and nothing but background between the cells.
  label_rows = grid[show.GAP:show.GAP + show.LABEL_HEIGHT]
  for column in range(len(columns)):
    left = show.cell_origin(0, column, size)[1]
    assert (label_rows[:, left:left + size] == show.TEXT).any()
  gap = grid[:, show.cell_origin(0, 1, size)[1] - show.GAP:show.cell_origin(0, 1, size)[1]]
  assert (gap == show.BACKGROUND).all()


def test_fit_to_cell_keeps_the_aspect_ratio():
  wide = np.zeros((50, 300, 3), np.uint8)
  wide[:, :150] = 255
  fitted = show.fit_to_cell(wide, 100)
  assert fitted.shape == (100, 100, 3)
  # Shrunk to 100 x 17 and centred: background above and below.
  assert (fitted[:40] == show.BACKGROUND).all() and (fitted[60:] == show.BACKGROUND).all()
  assert fitted[50, 10, 0] == 255 and fitted[50, 90, 0] == 0
  small = np.arange(30 * 20 * 3, dtype=np.uint8).reshape(30, 20, 3)
  fitted = show.fit_to_cell(small, 100)  # enlarged 3 times to 90 x 60
  np.testing.assert_array_equal(fitted[5:95, 20:80], show.enlarge(small, 3))


def test_missing_flags_are_reported():
  with pytest.raises(SystemExit, match='out'):
    show.main(['show', '--config=configs/simclr_tiny.py'])


def test_a_view_transform_is_drawn_part_by_part_with_its_targets_written_on(tmp_path):
  out = tmp_path / 'views.png'
  names = show.main(['show', '--config=configs/rotnet_tiny.py', f'--out={out}', '--images=1'])
  assert names == ['original'] + [f'rotated {i}' for i in range(1, 5)]
  grid, size = read_png(out), 112
  label = np.zeros((size, size), bool)
  label[:1 + show.LABEL_HEIGHT, :1 + 3 * show.LABEL_SCALE] = True  # one digit at (1, 1)
  upright = cell(grid, 0, 1, size)
  for k in range(4):
    drawn = cell(grid, 0, k + 1, size)
    written = np.zeros_like(drawn)
    show.draw_text(written, str(k), 1, 1)  # the rotation's index
    assert (drawn[written == show.TEXT] == show.TEXT).all()
    # Elsewhere the part is the upright view turned k quarter turns.
    away = ~label & ~np.rot90(label, k)
    np.testing.assert_array_equal(drawn[away], np.rot90(upright, k)[away])


def test_cmc_shows_l_and_ab_and_cpc_its_patch_grid(tmp_path):
  out = tmp_path / 'cmc.png'
  names = show.main(['show', '--config=configs/cmc_tiny.py', f'--out={out}', '--images=1'])
  assert names == ['original', 'image', 'image_ab']
  grid, size = read_png(out), 112
  lightness, ab = cell(grid, 0, 1, size), cell(grid, 0, 2, size)
  assert (lightness[..., 0] == lightness[..., 2]).all()  # L alone: grey
  assert (ab.max(-1) - ab.min(-1)).max() > 40  # the strokes' tint, in colour

  out = tmp_path / 'cpc.png'
  names = show.main(['show', '--config=configs/cpc_tiny.py', f'--out={out}', '--images=1'])
  assert names == ['original'] + [f'patches {i}' for i in range(1, 10)]
  config = load_config('configs/cpc_tiny.py')
  images, _ = sources.mnist_splits()['train']
  view = views_of(config, images[0], 0)[0]  # 28 pixels: 14-pixel patches at stride 7
  grid = read_png(out)
  for position in range(9):
    top, left = 7 * (position // 3), 7 * (position % 3)
    np.testing.assert_array_equal(cell(grid, 0, position + 1, size),
                                  show.enlarge(view[top:top + 14, left:left + 14], 8))


@pytest.mark.parametrize('path, column, text', [
    ('configs/colorization_tiny.py', 'colour', 'ab'),
    ('configs/inpainting_tiny.py', 'masked', 'mask target')])
def test_a_pixel_target_view_is_drawn_with_its_targets_named(tmp_path, path, column, text):
  out = tmp_path / 'views.png'
  names = show.main(['show', f'--config={path}', f'--out={out}', '--images=1'])
  assert names[:2] == ['original', column]  # colorization's ab target drawn after them
  drawn = cell(read_png(out), 0, 1, 112)
  written = np.zeros_like(drawn)
  show.draw_text(written, text, 1, 1)
  assert (drawn[written == show.TEXT] == show.TEXT).all()
  view = drawn[show.LABEL_HEIGHT + 2:]  # below the text
  np.testing.assert_array_equal(view[..., 0], view[..., 1])  # grey: L, or a grey digit
  if column == 'masked':  # a quarter of the view, 14 x 14 pixels drawn 4 times, is grey fill
    assert (drawn == 128).all(-1).sum() >= 56 * 56
