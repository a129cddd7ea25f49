"""Host input pipelines: infinite two-view pretraining batches, eval passes.

Pretraining data is a pure function of (seed, step, process_index):
  * epoch e of a process's shard is shuffled with a seed folded from
    (seed, process_index, e), so any epoch can be rebuilt on its own;
  * the examples form one stream, position p = step * batch + i, and the
    augmentation seed of an example is folded from (seed, process_index, p).
Resuming at `start_step` rebuilds the epoch holding position
start_step * batch and skips into it; nothing depends on the order in which
tf.data's parallel map finishes.
"""
import functools
import math
from typing import Iterator

import numpy as np
import tensorflow as tf

from jax_ssl.data import augment

_SHUFFLE_STREAM, _AUGMENT_STREAM = 0, 1  # independent seed streams
# The map functions use tf ops for all control flow, so AutoGraph's rewriting
# of the whole augmentation call tree would only add seconds to each build.
_plain_tf = tf.autograph.experimental.do_not_convert
_INT64_MAX = np.iinfo(np.int64).max


def check_data_config(data_config):
  """Raises ValueError naming the first field that cannot work."""
  cfg, aug = data_config, data_config.augment
  checks = [
      ('image_size', cfg.image_size, cfg.image_size >= 1, 'an integer >= 1'),
      ('eval_crop_fraction', cfg.eval_crop_fraction,
       0 < cfg.eval_crop_fraction <= 1, 'in (0, 1]'),
      ('shuffle_buffer', cfg.shuffle_buffer, cfg.shuffle_buffer >= 1,
       'an integer >= 1'),
      ('augment.crop_area_min', aug.crop_area_min,
       0 < aug.crop_area_min <= aug.crop_area_max,
       'in (0, augment.crop_area_max]'),
      ('augment.crop_area_max', aug.crop_area_max,
       0 < aug.crop_area_max <= 1, 'in (0, 1]'),
      ('augment.aspect_min', aug.aspect_min,
       0 < aug.aspect_min <= aug.aspect_max, 'in (0, augment.aspect_max]'),
      ('augment.color_strength', aug.color_strength,
       0 <= aug.color_strength <= 2.5, 'in [0, 2.5] (hue delta 0.2 s <= 0.5)'),
  ] + [(f'augment.{name}', aug[name], 0 <= aug[name] <= 1, 'in [0, 1]')
       for name in ('color_prob', 'grayscale_prob', 'blur_prob')]
  for field, value, ok, accepted in checks:
    if not ok:
      raise ValueError(f'config.data.{field}={value!r} must be {accepted}.')


def to_float(image):
  """uint8 [0, 255] -> float32 [0, 1]."""
  return tf.cast(image, tf.float32) / 255.0


def _key(seed, process_index, stream):
  key = tf.constant([seed % _INT64_MAX, process_index], tf.int64)
  return tf.random.experimental.stateless_fold_in(key, stream)


def _shard_size(ds):
  size = int(ds.cardinality())
  if size < 0:  # unknown: count it once
    size = int(ds.reduce(np.int64(0), lambda n, _: n + 1))
  return size


def _shuffled_stream(shard, shuffle_buffer, shuffle_key, first_epoch):
  """Epochs first_epoch, first_epoch + 1, ... each shuffled by its own seed."""

  @_plain_tf
  def epoch(e):
    seed = tf.random.stateless_uniform(
        [], tf.random.experimental.stateless_fold_in(shuffle_key, e),
        minval=0, maxval=_INT64_MAX, dtype=tf.int64)
    return shard.shuffle(shuffle_buffer, seed=seed,
                         reshuffle_each_iteration=False)

  return tf.data.Dataset.range(first_epoch, _INT64_MAX).flat_map(epoch)


def pretrain_dataset(data_config, source, *, local_batch_size, seed,
                     process_index=0, process_count=1,
                     start_step=0) -> tf.data.Dataset:
  """The tf.data.Dataset behind `pretrain_batches`."""
  check_data_config(data_config)
  shard = source.dataset('train', process_index, process_count)
  shard_size = _shard_size(shard)
  if shard_size == 0:
    raise ValueError(f'process {process_index} of {process_count} got no '
                     f'training examples from {source.name} '
                     f'({source.num_train} in all).')
  first = start_step * local_batch_size
  stream = _shuffled_stream(shard, data_config.shuffle_buffer,
                            _key(seed, process_index, _SHUFFLE_STREAM),
                            first // shard_size)
  stream = stream.skip(first % shard_size).enumerate(start=first)
  augment_key = _key(seed, process_index, _AUGMENT_STREAM)

  # Traced once and called twice: halves the time to build the pipeline.
  @functools.partial(tf.function, autograph=False)
  def view(image, view_seed):
    return augment.simclr_view(image, view_seed, data_config.augment,
                               data_config.image_size)

  @_plain_tf
  def two_views(position, example):
    seed1, seed2 = tf.unstack(tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(augment_key, position), 2))
    image = to_float(example['image'])
    return {'view1': view(image, seed1), 'view2': view(image, seed2),
            'label': example['label']}

  stream = stream.map(two_views, num_parallel_calls=tf.data.AUTOTUNE)
  return stream.batch(local_batch_size, drop_remainder=True).prefetch(
      tf.data.AUTOTUNE)


def pretrain_batches(data_config, source, *, local_batch_size, seed,
                     process_index=0, process_count=1,
                     start_step=0) -> Iterator[dict[str, np.ndarray]]:
  """Infinite {'view1', 'view2': float32 [b, S, S, 3], 'label': int32 [b]}.

  Step k's batch depends only on (seed, k, process_index); starting at
  `start_step` gives the same batches as advancing a fresh iterator.
  """
  return pretrain_dataset(
      data_config, source, local_batch_size=local_batch_size, seed=seed,
      process_index=process_index, process_count=process_count,
      start_step=start_step).as_numpy_iterator()


def eval_image(image, size, crop_fraction):
  """uint8 [h, w, 3] -> float32 [size, size, 3] in [0, 1].

  Images whose shorter side exceeds `size` get their shorter side resized to
  size / crop_fraction and a centred size x size crop; smaller ones are
  resized straight to size x size.
  """
  image = to_float(image)
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  shorter = tf.minimum(height, width)

  def centre_crop():
    scale = (size / crop_fraction) / tf.cast(shorter, tf.float32)
    new_h = tf.maximum(size, tf.cast(tf.round(tf.cast(height, tf.float32)
                                              * scale), tf.int32))
    new_w = tf.maximum(size, tf.cast(tf.round(tf.cast(width, tf.float32)
                                              * scale), tf.int32))
    resized = tf.image.resize(image, [new_h, new_w], method='bicubic')
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized[top:top + size, left:left + size]

  out = tf.cond(shorter > size, centre_crop,
                lambda: tf.image.resize(image, [size, size], method='bicubic'))
  return tf.clip_by_value(tf.ensure_shape(out, [size, size, 3]), 0.0, 1.0)


def eval_batches(data_config, source, split, *, local_batch_size,
                 process_index=0, process_count=1) -> Iterator[dict]:
  """One pass: {'image': float32 [b, S, S, 3], 'label': int32, 'mask': bool}.

  Every process yields ceil(num_examples / (process_count * b)) batches, the
  tail padded with mask=False, so jitted multi-host steps stay in lockstep.
  """
  check_data_config(data_config)
  size = data_config.image_size
  num_batches = math.ceil(source.num_examples(split)
                          / (process_count * local_batch_size))

  @_plain_tf
  def prepare(example):
    return {'image': eval_image(example['image'], size,
                                data_config.eval_crop_fraction),
            'label': example['label'], 'mask': True}

  padding = tf.data.Dataset.from_tensors({
      'image': tf.zeros([size, size, 3]), 'label': 0, 'mask': False}).repeat()
  ds = source.dataset(split, process_index, process_count)
  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.concatenate(padding).batch(local_batch_size, drop_remainder=True)
  ds = ds.take(num_batches)
  return ds.prefetch(tf.data.AUTOTUNE).as_numpy_iterator()
