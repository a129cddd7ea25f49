"""Sources and pipelines: counts, determinism, resume, sharding, errors."""
import itertools
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from jax_ssl.config import base_config
from jax_ssl.data import eval_batches, make_source, pretrain_batches, Source
from jax_ssl.data import pipeline, sources


def data_config(method='simclr', **overrides):
  """config.data of `method` (its views) on the built-in digits, with overrides; `views`
  maps group names to the fields to change."""
  cfg = base_config(method).data
  cfg.update(dict(source='builtin:mnist', image_size=28))
  cfg.augment.update(overrides.pop('augment', {}))
  for name, fields in overrides.pop('views', {}).items():
    cfg.views[name].update(fields)
  cfg.update(overrides)
  return cfg


def indexed_source(n, shape=(8, 8)):
  """n images of `shape` whose label is their index, to follow examples around."""
  images = np.random.default_rng(0).integers(0, 256, (n, *shape, 3), np.uint8)
  labels = np.arange(n, dtype=np.int32)

  def read(split, process_index, process_count):
    del split
    return tf.data.Dataset.from_tensor_slices({
        'image': images[process_index::process_count],
        'label': labels[process_index::process_count],
        'index': labels[process_index::process_count]})

  return Source('test:indexed', n, n, n, read)


def take(iterator, n):
  return list(itertools.islice(iterator, n))


# ------------------------------------------------------------- builtin ----
def test_builtin_mnist_is_a_balanced_disjoint_rgb_split():
  source = make_source(data_config())
  assert (source.num_classes, source.num_train, source.num_test) == (
      10, 4000, 1000)
  split = {s: next(iter(source.dataset(s).batch(5000))) for s in ('train',
                                                                 'test')}
  for name, count in (('train', 400), ('test', 100)):
    images, labels = split[name]['image'].numpy(), split[name]['label']
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28, 3)
    assert labels.dtype == tf.int32
    np.testing.assert_array_equal(np.bincount(labels), [count] * 10)
    np.testing.assert_array_equal(images[..., 0], images[..., 2])
    assert images.max() == 255
  hashes = {s: {x.tobytes() for x in split[s]['image'].numpy()}
            for s in split}
  assert not hashes['train'] & hashes['test']
  shards = [next(iter(source.dataset('train', i, 2).batch(5000)))['image']
            for i in range(2)]
  assert [len(s) for s in shards] == [2000, 2000]
  assert {x.tobytes() for s in shards for x in s.numpy()} == hashes['train']


# ------------------------------------------------------------ pretrain ----
def test_pretrain_batches_are_two_views_in_range():
  source = make_source(data_config())
  batch = next(pretrain_batches(data_config(), source, local_batch_size=16,
                                seed=0))
  assert batch['view1'].shape == batch['view2'].shape == (16, 28, 28, 3)
  assert batch['view1'].dtype == np.float32 and batch['label'].dtype == np.int32
  for view in ('view1', 'view2'):
    assert batch[view].min() >= 0 and batch[view].max() <= 1
  # Two independent augmentations of each image.
  diff = np.abs(batch['view1'] - batch['view2']).mean(axis=(1, 2, 3))
  assert (diff > 1e-3).all()


def test_multicrop_batches_hold_global_and_local_crops():
  cfg = data_config('swav', views={'global': dict(count=2),
                                   'local': dict(count=3, size=12)})
  batch = next(pretrain_batches(cfg, make_source(cfg), local_batch_size=4,
                                seed=0))
  assert batch['global'].shape == (4, 2, 28, 28, 3)
  assert batch['local'].shape == (4, 3, 12, 12, 3)
  for crops in (batch['global'], batch['local']):
    assert crops.min() >= 0 and crops.max() <= 1
  # Every crop of an example is its own random draw.
  assert np.abs(batch['global'][:, 0] - batch['global'][:, 1]).mean() > 1e-3


def test_view_groups_take_their_own_blur_and_solarize_rates():
  """BYOL's pair, as data: view 1 always blurred and never solarized; view 2 the other
  way round."""
  cfg = data_config('byol', image_size=32, augment=dict(
      crop_area_min=1.0, aspect_min=1.0, aspect_max=1.0, flip=False, color_prob=0.0,
      grayscale_prob=0.0), views=dict(view1=dict(blur_prob=1.0, solarize_prob=0.0),
                                      view2=dict(blur_prob=0.0, solarize_prob=1.0)))
  image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
  source = Source('test:one', 1, 1, 1, lambda *_: tf.data.Dataset.from_tensors(
      {'image': image, 'label': np.int32(0), 'index': np.int32(0)}))
  batch = next(pretrain_batches(cfg, source, local_batch_size=4, seed=0))
  original = image / 255.0
  # Blurred (a noise image loses contrast) but not solarized (still correlated).
  assert np.abs(batch['view1'] - original).mean() > 0.02
  assert batch['view1'].std() < original.std()
  assert np.corrcoef(batch['view1'].mean(0).ravel(), original.ravel())[0, 1] > 0.5
  np.testing.assert_allclose(batch['view2'],
                             np.broadcast_to(np.where(original < 0.5, original,
                                                      1 - original), (4, 32, 32, 3)),
                             atol=2e-3)


def test_pretrain_is_deterministic_and_resumes_across_epochs():
  source, cfg = indexed_source(20), data_config(image_size=8)
  kwargs = dict(local_batch_size=8, seed=3)
  # 20 examples, batches of 8: steps 2..6 straddle epoch boundaries.
  run = take(pretrain_batches(cfg, source, **kwargs), 7)
  again = take(pretrain_batches(cfg, source, **kwargs), 7)
  resumed = take(pretrain_batches(cfg, source, start_step=4, **kwargs), 3)
  for a, b in zip(run, again):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  for a, b in zip(run[4:], resumed):
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  other = next(pretrain_batches(cfg, source, local_batch_size=8, seed=4))
  assert np.abs(other['view1'] - run[0]['view1']).max() > 0.1


def test_pretrain_reshuffles_every_epoch_and_shards_by_process():
  source, cfg = indexed_source(16), data_config(image_size=8)
  batches = take(pretrain_batches(cfg, source, local_batch_size=8, seed=0), 6)
  epochs = np.concatenate([b['label'] for b in batches]).reshape(3, 16)
  for epoch in epochs:  # each epoch is a permutation of the shard
    np.testing.assert_array_equal(np.sort(epoch), np.arange(16))
  assert len({tuple(e) for e in epochs}) == 3
  assert not np.array_equal(epochs[0], np.arange(16))
  labels = {
      i: np.concatenate([b['label'] for b in take(pretrain_batches(
          cfg, source, local_batch_size=4, seed=0, process_index=i,
          process_count=2), 2)]) for i in range(2)}
  np.testing.assert_array_equal(np.sort(labels[0]), np.arange(0, 16, 2))
  np.testing.assert_array_equal(np.sort(labels[1]), np.arange(1, 16, 2))


# --------------------------------------------------------------- index ----
def _indices_and_images(source, split, process_count):
  """{index: image bytes} over every process's shard of `split`."""
  seen = {}
  for process in range(process_count):
    for example in source.dataset(split, process, process_count).as_numpy_iterator():
      assert int(example['index']) not in seen
      seen[int(example['index'])] = example['image'].tobytes()
  return seen


@pytest.mark.parametrize('kind', ['builtin', 'folder', 'tfds'])
def test_every_example_keeps_its_index_in_the_split_whatever_the_processes(kind, tmp_path):
  if kind == 'builtin':
    cfg = data_config()
  elif kind == 'folder':
    make_folder(str(tmp_path))
    cfg = data_config(source=f'folder:{tmp_path}')
  else:
    cfg = data_config(source='tfds:cifar10')
  with tfds.testing.mock_data(num_examples=12):
    source = make_source(cfg)
    alone = _indices_and_images(source, 'train', 1)
    assert sorted(alone) == list(range(source.num_train))
    if kind != 'tfds':  # mock_data gives every part of an even split all 12 examples
      assert _indices_and_images(source, 'train', 3) == alone  # each example keeps its index
  if kind == 'builtin':
    images, _ = sources.mnist_splits()['train']
    assert all(alone[i] == images[i].tobytes() for i in (0, 17, 3999))


def test_pretrain_batches_carry_each_examples_index_every_epoch_and_on_resume():
  # indexed_source's labels are the indices, which makes the index checkable.
  source, cfg = indexed_source(20), data_config(image_size=8)
  batches = take(pretrain_batches(cfg, source, local_batch_size=8, seed=3), 6)
  for batch in batches:
    assert batch['index'].dtype == np.int32
    np.testing.assert_array_equal(batch['index'], batch['label'])
  resumed = next(pretrain_batches(cfg, source, local_batch_size=8, seed=3, start_step=4))
  np.testing.assert_array_equal(resumed['index'], batches[4]['index'])
  for process in range(2):
    shard = next(pretrain_batches(cfg, source, local_batch_size=4, seed=3,
                                  process_index=process, process_count=2))
    np.testing.assert_array_equal(shard['index'], shard['label'])
    assert set(shard['index'] % 2) == {process}


# ---------------------------------------------------------------- eval ----
def test_eval_covers_mnist_test_once_over_two_processes():
  cfg = data_config()
  source = make_source(cfg)
  seen_labels, seen_images, seen_index = [], [], []
  for process in range(2):
    batches = list(eval_batches(cfg, source, 'test', local_batch_size=64,
                                process_index=process, process_count=2))
    assert len(batches) == 8  # ceil(1000 / 128) on every process
    for b in batches:
      assert b['image'].shape == (64, 28, 28, 3) and b['mask'].dtype == bool
      assert (b['image'][~b['mask']] == 0).all()
      seen_labels.append(b['label'][b['mask']])
      seen_images.append(b['image'][b['mask']])
      seen_index.append(b['index'][b['mask']])
  images, labels = sources.mnist_splits()['test']
  # Each example's position in the split comes with it.
  index = np.concatenate(seen_index)
  np.testing.assert_array_equal(np.sort(index), np.arange(1000))
  np.testing.assert_array_equal(np.concatenate(seen_images), images[index] / np.float32(255))
  # 28-pixel images at image_size 28: eval is exactly uint8 / 255.
  got = np.concatenate(seen_images)
  want = images / np.float32(255)
  assert len(got) == 1000
  order = lambda x: np.lexsort(x.reshape(len(x), -1).T)
  np.testing.assert_allclose(got[order(got)], want[order(want)], atol=1e-6)
  np.testing.assert_array_equal(np.bincount(np.concatenate(seen_labels)),
                                np.bincount(labels))


def test_eval_image_centre_crops_large_images_and_resizes_small_ones():
  image = np.zeros((64, 48, 3), np.uint8)
  image[..., 2] = 255  # blue border
  image[12:52, 8:40] = [255, 0, 0]  # red centre
  centre = pipeline.eval_image(image, 16, 0.5).numpy()
  np.testing.assert_allclose(centre, np.broadcast_to([1, 0, 0], centre.shape),
                             atol=0.02)
  whole = pipeline.eval_image(image, 16, 1.0).numpy()
  assert whole[:, 0, 2].min() > 0.9  # the blue border is still in view
  small = pipeline.eval_image(np.full((8, 8, 3), 51, np.uint8), 16, 0.875)
  np.testing.assert_allclose(small, np.full((16, 16, 3), 0.2), atol=1e-6)


# ---------------------------------------------------------------- tfds ----
@pytest.mark.parametrize('name', ['mnist', 'cifar10'])
def test_tfds_source_under_mock_data(name):
  cfg = data_config(source=f'tfds:{name}', image_size=16)
  with tfds.testing.mock_data(num_examples=12):
    source = make_source(cfg)
    assert (source.num_classes, source.num_train) == (10, 12)
    example = next(iter(source.dataset('train')))
    assert example['image'].dtype == tf.uint8
    assert example['image'].shape[-1] == 3
    assert example['label'].dtype == tf.int32
    batch = next(pretrain_batches(cfg, source, local_batch_size=4, seed=0))
    assert batch['view1'].shape == (4, 16, 16, 3)
    assert np.abs(batch['view1'] - batch['view2']).max() > 0.05
    evals = list(eval_batches(cfg, source, 'test', local_batch_size=5))
    assert [b['mask'].sum() for b in evals] == [5, 5, 2]


def test_tfds_errors_name_field_and_data_dir(tmp_path):
  with pytest.raises(ValueError, match='not prepared.*' + str(tmp_path)):
    make_source(data_config(source='tfds:mnist', data_dir=str(tmp_path)))
  with pytest.raises(ValueError, match="config.data.source.*no dataset"):
    make_source(data_config(source='tfds:no_such_dataset_xyz'))
  with pytest.raises(ValueError, match='"image" and a "label"'):
    make_source(data_config(source='tfds:imdb_reviews',
                            data_dir=str(tmp_path)))


# -------------------------------------------------------------- folder ----
def write_image(path, pixels, fmt):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  encode = tf.io.encode_png if fmt == 'png' else tf.io.encode_jpeg
  tf.io.write_file(path, encode(pixels))


def make_folder(root):
  """Constant-colour images (value 20 * (i + 1)) of mixed formats and modes.

  Returns {split: {value: class index}} to identify images after decoding.
  """
  layout = {'train': [('cat', 'png', 3), ('cat', 'jpg', 1), ('dog', 'png', 4),
                      ('dog', 'jpg', 3), ('dog', 'png', 1)],
            'test': [('bird', 'png', 4), ('cat', 'jpg', 3), ('dog', 'png', 1),
                     ('dog', 'jpg', 3), ('bird', 'png', 3), ('cat', 'png', 1)]}
  classes = ['bird', 'cat', 'dog']
  expected = {}
  for split, files in layout.items():
    expected[split] = {}
    for i, (cls, fmt, channels) in enumerate(files):
      value = 20 * (i + 1)
      pixels = np.full((20 + i, 24, channels), value, np.uint8)
      if channels == 4:
        pixels[..., 3] = 128  # translucent: alpha must be dropped, not mixed
      write_image(f'{root}/{split}/{cls}/img{i}.{fmt}', pixels,
                  'png' if channels == 4 else fmt)
      expected[split][value] = classes.index(cls)
  return expected


def test_folder_source_reads_every_format_as_rgb(tmp_path):
  expected = make_folder(str(tmp_path))
  source = make_source(data_config(source=f'folder:{tmp_path}'))
  assert (source.num_classes, source.num_train, source.num_test) == (3, 5, 6)
  for split in ('train', 'test'):
    got = {}
    for example in source.dataset(split):
      image = example['image'].numpy()
      assert image.dtype == np.uint8 and image.shape[-1] == 3
      assert np.ptp(image) <= 2  # constant colour, gray and RGBA included
      got[int(round(image.mean() / 20)) * 20] = int(example['label'])
    assert got == expected[split]


def test_folder_pretrain_and_eval_cover_every_example_once(tmp_path):
  expected = make_folder(str(tmp_path))
  cfg = data_config(source=f'folder:{tmp_path}', image_size=16)
  source = make_source(cfg)
  batch = next(pretrain_batches(cfg, source, local_batch_size=4, seed=0))
  assert batch['view1'].shape == (4, 16, 16, 3)
  assert set(batch['label']) <= set(expected['train'].values())
  seen = []
  for process in range(2):
    batches = list(eval_batches(cfg, source, 'test', local_batch_size=2,
                                process_index=process, process_count=2))
    assert len(batches) == 2  # ceil(6 / (2 * 2))
    for b in batches:
      for image, label in zip(b['image'][b['mask']], b['label'][b['mask']]):
        seen.append((int(round(image.mean() * 255 / 20)) * 20, int(label)))
  assert sorted(seen) == sorted(expected['test'].items())


def test_eval_skips_images_that_fail_to_decode_and_says_which(tmp_path):
  make_folder(str(tmp_path))
  good = (tmp_path / 'test' / 'cat' / 'img5.png').read_bytes()
  (tmp_path / 'test' / 'cat' / 'half.png').write_bytes(good[:len(good) // 2])
  (tmp_path / 'test' / 'dog' / 'empty.png').write_bytes(b'')
  cfg = data_config(source=f'folder:{tmp_path}', image_size=16)
  source = make_source(cfg)
  assert source.num_test == 8
  names, skipped = [], []
  for process in range(2):
    batches = eval_batches(cfg, source, 'test', local_batch_size=2, process_index=process,
                           process_count=2)
    assert batches.num_batches == 2
    for b in batches:
      names += [source.example_name('test', i) for i in b['index'][b['mask']]]
      assert (b['index'][~b['mask']] == -1).all()
    skipped += [source.example_name('test', i) for i in batches.skipped]
  assert sorted(skipped) == [f'{tmp_path}/test/cat/half.png', f'{tmp_path}/test/dog/empty.png']
  assert len(names) == 6 and not set(names) & set(skipped)
  # max_examples: the split's first positions only, and the batches they need.
  first = eval_batches(cfg, source, 'test', local_batch_size=2, max_examples=3)
  assert first.num_batches == 2
  assert sorted(i for b in first for i in b['index'][b['mask']]) == [0, 1]
  assert list(first.skipped) == [2]  # cat/half.png, third by name


# -------------------------------------------------------------- errors ----
@pytest.mark.parametrize('spec', ['mnist', 'hdfs:x', 'builtin:', 'tfds'])
def test_malformed_source_lists_the_three_forms(spec):
  with pytest.raises(ValueError, match='config.data.source') as error:
    make_source(data_config(source=spec))
  for form in ("'builtin:<name>'", "'tfds:<name>'", "'folder:<path>'"):
    assert form in str(error.value)
  assert repr(spec) in str(error.value)


def test_unknown_builtin_lists_known_ones():
  with pytest.raises(ValueError, match="'builtin:cifar'.*known: colour_digits, mnist"):
    make_source(data_config(source='builtin:cifar'))


def test_folder_errors(tmp_path):
  def error(path):
    with pytest.raises(ValueError, match='config.data.source') as e:
      make_source(data_config(source=f'folder:{path}'))
    return str(e.value)

  assert 'does not exist' in error(tmp_path / 'missing')
  os.makedirs(tmp_path / 'a' / 'train' / 'cat')
  assert 'no test/ subfolder' in error(tmp_path / 'a')
  os.makedirs(tmp_path / 'b' / 'test')
  os.makedirs(tmp_path / 'b' / 'train')
  assert 'no class folders' in error(tmp_path / 'b')
  write_image(f'{tmp_path}/a/train/cat/x.png', np.zeros((4, 4, 3), np.uint8),
              'png')
  os.makedirs(tmp_path / 'a' / 'test' / 'cat')
  assert "split 'test' has no files" in error(tmp_path / 'a')
  write_image(f'{tmp_path}/a/test/cat/y.jpg', np.zeros((4, 4, 3), np.uint8),
              'jpg')
  make_source(data_config(source=f'folder:{tmp_path}/a'))  # now valid


def test_bad_config_values_name_their_field():
  source = indexed_source(8)
  with pytest.raises(ValueError, match=r'config.data.augment.blur_prob=1.5'):
    pretrain_batches(data_config(augment=dict(blur_prob=1.5)), source,
                     local_batch_size=2, seed=0)
