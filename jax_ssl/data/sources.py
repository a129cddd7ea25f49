"""Image sources: where examples come from, before any augmentation.

`make_source(config.data)` parses `config.data.source`, validates everything
it can (names, folders, file contents, prepared TFDS data, at least one
decodable image per split; files that are not images at all are left out, or
stop the run if config.data.on_bad_file='error') and returns a `Source` whose
`dataset(split, process_index, process_count)` gives that process's shard as
a finite, unshuffled tf.data.Dataset of `{'image': uint8 [h, w, 3],
'label': int32 [], 'index': int32 []}`, where `index` is the example's position in
its split: the same in every epoch, process layout and resumed run, so methods can
keep per-example state (a memory bank, pseudo-labels). `positions(...)` gives a
shard's indices up front, and `example_name` the file of a position.

Folder and TFDS sources also give their examples undecoded,
`dataset(..., decoded=False)` -> `{'encoded': tf.string, 'label', 'index'}`,
so a pipeline can decode only the window it crops (`decode_window`).
In-memory sources (builtin:mnist, builtin:colour_digits; see data/builtin.py) always give
decoded images and expose their arrays through `Source.arrays(split)`.

`decode` turns JPEG, PNG (8- and 16-bit, palette, grayscale, with or without
alpha), GIF (first frame) and BMP (24/32-bit, 8-bit palette) bytes into RGB
uint8; alpha is dropped. Bytes it cannot decode, a truncated file for
instance, raise tf.errors.InvalidArgumentError inside the tf.data map, which
`tf.data.Dataset.ignore_errors()` downstream skips.
"""
import concurrent.futures
import dataclasses
import os
import re
from typing import Callable, Optional

import numpy as np
import tensorflow as tf
from absl import logging

from jax_ssl.data import builtin

SPLITS = ('train', 'test')
SOURCE_FORMS = ("'builtin:<name>' (one of {builtins}), 'tfds:<name>' (a TFDS "
                "dataset prepared in config.data.data_dir) or 'folder:<path>' "
                "(<path>/train/<class>/* and <path>/test/<class>/*)")
JPEG_MAGIC = b'\xff\xd8\xff'
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
BMP_MAGIC = b'BM'
# First bytes of the formats `decode` reads.
IMAGE_MAGIC = {
    JPEG_MAGIC: 'JPEG',
    PNG_MAGIC: 'PNG',
    b'GIF87a': 'GIF',
    b'GIF89a': 'GIF',
    BMP_MAGIC: 'BMP',
}


@dataclasses.dataclass(frozen=True)
class Source:
  """A labelled image dataset with a train and a test split."""
  name: str
  num_classes: int
  num_train: int
  num_test: int
  # read(split, process_index, process_count) -> this process's shard of
  # {'image': uint8 [h, w, 3], 'label': int32}.
  read: Callable[[str, int, int], tf.data.Dataset]
  # The same shard as {'encoded': tf.string, 'label': int32}; None for
  # sources that hold decoded images.
  read_encoded: Optional[Callable[[str, int, int], tf.data.Dataset]] = None
  # split -> (images uint8 [n, h, w, 3], labels int32 [n]), the whole split
  # in memory; None for sources read from files.
  split_arrays: Optional[Callable[[str], tuple]] = None
  # positions(split, process_index, process_count) -> the positions in the
  # split of the shard's examples, in order; None: a strided shard
  # (examples p, p + P, p + 2P, ...).
  shard_positions: Optional[Callable[[str, int, int], np.ndarray]] = None
  # split -> the split's file paths by position; None where examples are not
  # files.
  split_paths: Optional[Callable[[str], np.ndarray]] = None

  @property
  def encoded(self) -> bool:
    """Whether `dataset(..., decoded=False)` yields {'encoded', 'label'}."""
    return self.read_encoded is not None

  def num_examples(self, split: str) -> int:
    _check_split(split)
    return self.num_train if split == 'train' else self.num_test

  def arrays(self, split: str):
    """(images uint8 [n, h, w, 3], labels int32 [n]) of the whole split.

    Only in-memory sources have them (None otherwise); the arrays are
    read-only and shared, so copy them before changing them.
    """
    _check_split(split)
    return None if self.split_arrays is None else self.split_arrays(split)

  def positions(self, split: str, process_index: int = 0,
                process_count: int = 1) -> np.ndarray:
    """int64 positions in `split` of the examples `dataset` gives, in order."""
    _check_split(split)
    if self.shard_positions is not None:
      return self.shard_positions(split, process_index, process_count)
    return np.arange(process_index, self.num_examples(split), process_count)

  def example_name(self, split: str, position: int) -> str:
    """The file of an example, or where it is in the split if it is no file."""
    if self.split_paths is not None:
      return str(self.split_paths(split)[position])
    return f'{self.name} {split}[{position}]'

  def dataset(self, split: str, process_index: int = 0,
              process_count: int = 1, decoded: bool = True) -> tf.data.Dataset:
    """This process's shard of `split`, finite and unshuffled.

    decoded=True: {'image': uint8 [h, w, 3], 'label': int32}. decoded=False:
    {'encoded': tf.string, 'label': int32} where `self.encoded`, else the
    same as decoded=True.
    """
    _check_split(split)
    if not 0 <= process_index < process_count:
      raise ValueError(f'process_index must be in [0, {process_count}); '
                       f'got {process_index}.')
    if not decoded and self.read_encoded is not None:
      return self.read_encoded(split, process_index, process_count)
    return self.read(split, process_index, process_count)


def make_source(data_config) -> Source:
  """Parses and validates `config.data.source`; see the module docstring."""
  spec = data_config.source
  prefix, sep, rest = str(spec).partition(':')
  makers = {'builtin': _builtin_source, 'tfds': _tfds_source,
            'folder': _folder_source}
  if not sep or prefix not in makers or not rest:
    raise ValueError(
        f'config.data.source={spec!r} is not a known form; use '
        + SOURCE_FORMS.format(builtins=', '.join(sorted(_BUILTINS))) + '.')
  return makers[prefix](rest, data_config)


def _check_split(split):
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}; got {split!r}.')


def _bad_source(data_config, problem):
  return ValueError(f'config.data.source={data_config.source!r}: {problem}')


def to_rgb(image):
  """uint8 [h, w, c] with c in 1..4 -> [h, w, 3]; alpha is dropped."""
  channels = image.shape[-1]
  if channels == 3:
    return image
  if channels in (1, 2):
    return tf.tile(image[..., :1], [1, 1, 3])
  if channels == 4:
    return image[..., :3]
  rgb = tf.cond(tf.shape(image)[-1] < 3,
                lambda: tf.tile(image[..., :1], [1, 1, 3]),
                lambda: image[..., :3])
  return tf.ensure_shape(rgb, [None, None, 3])


# -------------------------------------------------------------- decode ----
def _starts_with(encoded, magic):
  return tf.equal(tf.strings.substr(encoded, 0, len(magic)), magic)


def _little_endian(encoded, pos, dtype):
  """The little-endian integer of dtype's width at byte `pos` of `encoded`."""
  width = dtype.size
  return tf.io.decode_raw(tf.strings.substr(encoded, pos, width), dtype,
                          little_endian=True)[0]


def _decode_png(encoded):
  """8-bit PNGs as they are; 16-bit ones rounded to the nearest 8-bit level."""
  bit_depth = tf.strings.substr(encoded, 24, 1)  # in IHDR, after the magic

  def sixteen_bit():
    wide = tf.cast(tf.io.decode_png(encoded, channels=3, dtype=tf.uint16),
                   tf.int32)
    # round(x * 255 / 65535): 65535 -> 255, and v * 257 -> v exactly.
    return tf.cast((wide * 255 + 32767) // 65535, tf.uint8)

  return tf.cond(tf.equal(bit_depth, b'\x10'), sixteen_bit,
                 lambda: tf.io.decode_png(encoded, channels=3))


def _decode_bmp(encoded):
  """BMP; 8-bit ones look their pixels up in the file's colour table.

  (tf.io.decode_bmp returns an 8-bit BMP's palette indices as gray levels.)
  """
  bits_per_pixel = _little_endian(encoded, 28, tf.uint16)

  def palette():
    indices = tf.io.decode_bmp(encoded, channels=0)
    header_end = 14 + _little_endian(encoded, 14, tf.int32)
    pixels_start = _little_endian(encoded, 10, tf.int32)
    table = tf.io.decode_raw(
        tf.strings.substr(encoded, header_end, pixels_start - header_end),
        tf.uint8)
    colours = tf.reshape(table, [-1, 4])[:, 2::-1]  # B, G, R, 0 -> R, G, B
    # An index past the table raises InvalidArgumentError, as corrupt data should.
    return tf.gather(colours, tf.cast(indices[..., 0], tf.int32))

  return tf.cond(tf.equal(bits_per_pixel, 8), palette,
                 lambda: tf.io.decode_bmp(encoded, channels=3))


@tf.autograph.experimental.do_not_convert  # plain tf ops; skip AutoGraph
def decode(encoded):
  """Image bytes (tf.string scalar) -> uint8 [h, w, 3]; works in graph mode.

  JPEG, PNG, GIF and BMP, told apart by their first bytes. Grayscale is
  repeated into three channels, alpha is dropped, 16-bit PNG levels are
  rounded to 8 bits, a GIF gives its first frame and an 8-bit BMP's palette
  is applied. Unknown or corrupt bytes (a truncated file, say) raise
  tf.errors.InvalidArgumentError.
  """
  encoded = tf.convert_to_tensor(encoded, tf.string)
  image = tf.cond(
      _starts_with(encoded, PNG_MAGIC), lambda: _decode_png(encoded),
      lambda: tf.cond(
          _starts_with(encoded, BMP_MAGIC), lambda: _decode_bmp(encoded),
          # JPEG, GIF, and the "unknown format" error for anything else.
          lambda: tf.io.decode_image(encoded, channels=3,
                                     expand_animations=False)))
  return tf.ensure_shape(image, [None, None, 3])


@tf.autograph.experimental.do_not_convert  # plain tf ops; skip AutoGraph
def decode_window(encoded, plan_fn):
  """Image bytes -> (the window plan_fn picks, uint8 [crop_h, crop_w, 3], plan).

  `plan_fn(height, width) -> (box, plan)`: the window to decode, (top, left,
  crop_h, crop_w) int32 scalars, and any nested tensors derived from the image
  size (the crops inside the window, say), returned beside it. Both are
  computed with tf ops (traced once per branch, without AutoGraph). A JPEG
  decodes only that window, after reading its size from the header; other
  formats are decoded whole by `decode` and sliced. The pixels are those of
  `decode` then slicing, except that for a JPEG with subsampled chroma (4:2:0,
  4:2:2) the window's outermost rows and columns may differ, since the decoder
  upsamples chroma there without the neighbours outside the window: a few
  levels on smooth images, tens at sharp colour edges. A window outside the
  image raises InvalidArgumentError.
  """
  encoded = tf.convert_to_tensor(encoded, tf.string)

  def window(height, width):
    box, plan = plan_fn(height, width)
    return tf.cast(tf.stack(box), tf.int32), plan

  def jpeg():
    shape = tf.image.extract_jpeg_shape(encoded)
    box, plan = window(shape[0], shape[1])
    return tf.image.decode_and_crop_jpeg(encoded, box, channels=3), plan

  def other():
    image = decode(encoded)
    shape = tf.shape(image)
    box, plan = window(shape[0], shape[1])
    top, left, crop_h, crop_w = tf.unstack(box)
    return tf.slice(image, tf.stack([top, left, 0]),
                    tf.stack([crop_h, crop_w, 3])), plan

  image, plan = tf.cond(_starts_with(encoded, JPEG_MAGIC), jpeg, other)
  return tf.ensure_shape(image, [None, None, 3]), plan


@tf.autograph.experimental.do_not_convert  # plain tf ops; skip AutoGraph
def _decode_example(example):
  return {'image': decode(example['encoded']), 'label': example['label'],
          'index': example['index']}


def _from_arrays(images, labels, process_index, process_count):
  """Strided shard of in-memory arrays: deterministic, sizes differ by <= 1."""
  return tf.data.Dataset.from_tensor_slices({
      'image': images[process_index::process_count],
      'label': labels[process_index::process_count].astype(np.int32),
      'index': np.arange(len(labels), dtype=np.int32)[process_index::process_count],
  })


# -------------------------------------------------------------- builtin ----
mnist_splits = builtin.mnist_splits


def _in_memory(name, splits):
  def read(split, process_index, process_count):
    return _from_arrays(*splits(split), process_index, process_count)

  return Source(f'builtin:{name}', 10, len(splits('train')[1]), len(splits('test')[1]), read,
                split_arrays=splits)


_BUILTINS = {'mnist': builtin.mnist_splits, 'colour_digits': builtin.colour_digits_splits}


def _builtin_source(name, data_config):
  if name not in _BUILTINS:
    raise _bad_source(data_config, f'unknown builtin dataset {name!r}; known: '
                      f'{", ".join(sorted(_BUILTINS))}.')
  splits = _BUILTINS[name]()
  return _in_memory(name, splits.__getitem__)


# ----------------------------------------------------------------- tfds ----
def _tfds_source(name, data_config):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data_dir = data_config.data_dir or None
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise _bad_source(data_config, f'TFDS has no dataset {name!r}; use a name '
                      'from tfds.list_builders() (e.g. cifar10, '
                      'imagenet2012).') from None
  features = builder.info.features
  missing = sorted({'image', 'label'} - set(features.keys()))
  if missing:
    raise _bad_source(data_config, f'TFDS dataset {name!r} lacks feature(s) '
                      f'{missing}; it needs an "image" and a "label" feature '
                      f'(it has {sorted(features.keys())}).')
  splits = {'train': data_config.train_split, 'test': data_config.test_split}
  counts = {split: _tfds_count(builder, data_config, field, tfds_split)
            for (split, tfds_split), field
            in zip(splits.items(), ('train_split', 'test_split'))}

  def shard(split, process_index, process_count, **kwargs):
    parts = tfds.even_splits(splits[split], n=process_count)
    # Each process reads a contiguous part; its examples' indices start after the
    # parts before it.
    first = sum(int(builder.as_dataset(split=part, shuffle_files=False).cardinality())
                for part in parts[:process_index])
    ds = builder.as_dataset(split=parts[process_index], shuffle_files=False, **kwargs)
    return ds.enumerate(start=first).map(_with_index)

  def positions(split, process_index, process_count):
    # tfds.even_splits: contiguous parts, the first (count % n) one example longer.
    size, longer = divmod(counts[split], process_count)
    start = process_index * size + min(process_index, longer)
    return np.arange(start, start + size + (process_index < longer))

  image = features['image']
  if not (isinstance(image, tfds.features.Image)
          and image.dtype in (tf.uint8, tf.uint16)):
    # Not stored as encoded image bytes: TFDS decodes it.
    def read(split, process_index, process_count):
      return shard(split, process_index, process_count).map(
          _standardise_tfds, num_parallel_calls=tf.data.AUTOTUNE)

    return Source(f'tfds:{name}', features['label'].num_classes,
                  counts['train'], counts['test'], read,
                  shard_positions=positions)

  def read_encoded(split, process_index, process_count):
    ds = shard(split, process_index, process_count,
               decoders={'image': tfds.decode.SkipDecoding()})
    return ds.map(_tfds_encoded, num_parallel_calls=tf.data.AUTOTUNE)

  def read(split, process_index, process_count):
    return read_encoded(split, process_index, process_count).map(
        _decode_example, num_parallel_calls=tf.data.AUTOTUNE)

  return Source(f'tfds:{name}', features['label'].num_classes,
                counts['train'], counts['test'], read, read_encoded,
                shard_positions=positions)


def _tfds_count(builder, data_config, field, tfds_split):
  """Examples in a split; opening it also checks the data is prepared."""
  try:
    ds = builder.as_dataset(split=tfds_split, shuffle_files=False)
  except AssertionError:  # TFDS's way of saying "not prepared"
    raise _bad_source(
        data_config, f'TFDS dataset {builder.name!r} is not prepared in '
        f'config.data.data_dir={data_config.data_dir!r} (looked in '
        f'{builder.data_dir}). Prepare it locally first (e.g. tfds build '
        f'{builder.name} --data_dir=...); jax_ssl never downloads.') from None
  except (ValueError, KeyError) as e:
    raise ValueError(f'config.data.{field}={tfds_split!r} is not a split of '
                     f'TFDS dataset {builder.name!r}: {e}') from None
  count = int(ds.cardinality())
  if count < 0:  # unknown cardinality: fall back to the builder's metadata
    count = builder.info.splits[tfds_split].num_examples
  return count


@tf.autograph.experimental.do_not_convert  # plain tf ops; skip AutoGraph
def _with_index(index, example):
  return {**example, 'index': tf.cast(index, tf.int32)}


@tf.autograph.experimental.do_not_convert  # plain tf ops; skip AutoGraph
def _standardise_tfds(example):
  return {'image': to_rgb(example['image']),
          'label': tf.cast(example['label'], tf.int32), 'index': example['index']}


@tf.autograph.experimental.do_not_convert  # plain tf ops; skip AutoGraph
def _tfds_encoded(example):
  return {'encoded': example['image'],
          'label': tf.cast(example['label'], tf.int32), 'index': example['index']}


# --------------------------------------------------------------- folder ----
def _folder_source(root, data_config):
  classes, files = _scan_folder(root, data_config)
  files = _check_images(files, data_config)
  _check_decodable(root, files, data_config)
  index = {name: i for i, name in enumerate(classes)}
  paths = {split: np.array([p for p, _ in files[split]])
           for split in SPLITS}
  labels = {split: np.array([index[c] for _, c in files[split]], np.int32)
            for split in SPLITS}

  def read_encoded(split, process_index, process_count):
    ds = tf.data.Dataset.from_tensor_slices({
        'path': paths[split][process_index::process_count],
        'label': labels[split][process_index::process_count],
        'index': np.arange(len(paths[split]), dtype=np.int32)[process_index::process_count]})
    return ds.map(_read_file, num_parallel_calls=tf.data.AUTOTUNE)

  def read(split, process_index, process_count):
    return read_encoded(split, process_index, process_count).map(
        _decode_example, num_parallel_calls=tf.data.AUTOTUNE)

  return Source(f'folder:{root}', len(classes), len(paths['train']),
                len(paths['test']), read, read_encoded,
                split_paths=paths.__getitem__)


@tf.autograph.experimental.do_not_convert  # plain tf ops; skip AutoGraph
def _read_file(example):
  return {'encoded': tf.io.read_file(example['path']),
          'label': example['label'], 'index': example['index']}


def _list_dir(path):
  # GCS listings end directories with '/'.
  return sorted(name.rstrip('/') for name in tf.io.gfile.listdir(path))


def _scan_folder(root, data_config):
  """Sorted class names and, per split, sorted (path, class) pairs.

  Names starting with '.' (.DS_Store, macOS '._' forks) are skipped.
  """
  layout = '<path>/train/<class>/<image> and <path>/test/<class>/<image>'
  if not tf.io.gfile.isdir(root):
    raise _bad_source(data_config, f'folder {root!r} does not exist; expected '
                      f'{layout}.')
  missing = [s for s in SPLITS if not tf.io.gfile.isdir(os.path.join(root, s))]
  if missing:
    raise _bad_source(data_config, f'folder {root!r} has no '
                      f'{" or ".join(s + "/" for s in missing)} subfolder; '
                      f'expected {layout}.')
  class_dirs = {
      split: [c for c in _list_dir(os.path.join(root, split))
              if not c.startswith('.')
              and tf.io.gfile.isdir(os.path.join(root, split, c))]
      for split in SPLITS}
  classes = sorted(set(class_dirs['train']) | set(class_dirs['test']))
  if not classes:
    raise _bad_source(data_config, f'no class folders in {root}/train or '
                      f'{root}/test; expected {layout}.')
  files = {split: [(os.path.join(root, split, c, name), c)
                   for c in class_dirs[split]
                   for name in _list_dir(os.path.join(root, split, c))
                   if not name.startswith('.')]
           for split in SPLITS}
  for split in SPLITS:
    if not files[split]:
      raise _bad_source(data_config, f'split {split!r} has no files in '
                        f'{os.path.join(root, split)}/<class>/.')
  return classes, files


def _not_an_image(path):
  """Whether a file's first bytes are none of the formats `decode` reads. An
  empty file is taken for an image cut short: it fails to decode, and is
  skipped and counted then."""
  try:
    with tf.io.gfile.GFile(path, 'rb') as f:
      head = f.read(8)
  except (tf.errors.OpError, OSError):  # e.g. a directory
    return True
  return head != b'' and not head.startswith(tuple(IMAGE_MAGIC))


def _check_images(files, data_config):
  """The files whose first bytes are an image's, per split.

  Reads every file's header, in parallel since GCS reads are slow. The other
  files stop the run when config.data.on_bad_file is 'error'; with 'skip' (the
  default, also for runs whose config predates the field) they are left out
  with one warning naming how many and the first few.
  """
  paths = [p for split in SPLITS for p, _ in files[split]]
  with concurrent.futures.ThreadPoolExecutor(32) as pool:
    bad = {p for p, no in zip(paths, pool.map(_not_an_image, paths)) if no}
  if not bad:
    return files
  listed = sorted(bad)
  more = f' and {len(bad) - 10} more' if len(bad) > 10 else ''
  problem = (f'{len(bad)} of {len(paths)} files are not JPEG, PNG, GIF or BMP '
             f'images (judged by their first bytes): '
             f'{", ".join(listed[:10])}{more}')
  if data_config.get('on_bad_file', 'skip') == 'error':
    raise _bad_source(data_config, problem + "; config.data.on_bad_file='skip'"
                      ' leaves them out.')
  kept = {split: [(p, c) for p, c in files[split] if p not in bad]
          for split in SPLITS}
  for split in SPLITS:
    if not kept[split]:
      raise _bad_source(data_config, f'split {split!r} has no images: '
                        + problem + '.')
  import jax  # pylint: disable=g-import-not-at-top  (the run's processes are up)
  if jax.process_index() == 0:
    logging.warning('%s; left out of the run (config.data.on_bad_file=%r).',
                    problem, 'skip')
  return kept


def _op_error_message(error):
  """A tf.errors.OpError's message without the op and function decorations."""
  message = re.sub(r'\{\{[^}]*\}\}\s*', '', error.message)
  return re.sub(r'\s*\[Op:[^\]]*\].*$', '', message, flags=re.S).strip()


def _check_decodable(root, files, data_config):
  """Decodes files of each split in order until one works (one, if healthy)."""
  for split in SPLITS:
    first_error = None
    for path, _ in files[split]:
      try:
        decode(tf.io.read_file(path))
        break
      except tf.errors.OpError as e:
        first_error = first_error or (path, _op_error_message(e))
    else:
      count = len(files[split])
      raise _bad_source(
          data_config, f'no file of split {split!r} in folder '
          f'{os.path.join(root, split)!r} decodes as an image: tried all '
          f'{count}; the first, {first_error[0]}, failed with: '
          f'{first_error[1]}')
