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

import numpy as np
import tensorflow as tf

from jax_ssl.data import augment, sources, views as views_lib

_SHUFFLE_STREAM, _AUGMENT_STREAM = 0, 1  # independent seed streams
# The map functions use tf ops for all control flow, so AutoGraph's rewriting
# of the whole augmentation call tree would only add seconds to each build.
_plain_tf = tf.autograph.experimental.do_not_convert
_INT64_MAX = np.iinfo(np.int64).max
# Where the colour ops run: host (tf.data), device (in the jitted step, after
# the host's crop and flip) or resident (the dataset on the devices, crops and
# all); auto picks host on CPU, else resident for in-memory datasets, else device.
PATHS = ('auto', 'host', 'device', 'resident')


def check_data_config(data_config):
  """Raises ValueError naming the first field that cannot work."""
  cfg, aug = data_config, data_config.augment
  checks = [
      ('augment.path', aug.path, aug.path in PATHS, f'one of {PATHS}'),
      ('augment.jitter', aug.jitter,
       len(aug.jitter) == 4 and min(aug.jitter) >= 0
       and aug.color_strength * aug.jitter[3] <= 0.5,
       '4 amounts >= 0 (brightness, contrast, saturation, hue) with '
       'color_strength * hue <= 0.5'),
      ('image_size', cfg.image_size, cfg.image_size >= 1, 'an integer >= 1'),
      ('eval_crop_fraction', cfg.eval_crop_fraction,
       0 < cfg.eval_crop_fraction <= 1, 'in (0, 1]'),
      ('shuffle_buffer', cfg.shuffle_buffer, cfg.shuffle_buffer >= 1,
       'an integer >= 1'),
      ('augment.crop_area_min', aug.crop_area_min,
       0 < aug.crop_area_min <= aug.crop_area_max,
       'in (0, augment.crop_area_max]'),
      ('augment.labelled_crop_area_min', aug.labelled_crop_area_min,
       0 < aug.labelled_crop_area_min <= aug.crop_area_max,
       'in (0, augment.crop_area_max]'),
      ('augment.crop_area_max', aug.crop_area_max,
       0 < aug.crop_area_max <= 1, 'in (0, 1]'),
      ('augment.aspect_min', aug.aspect_min,
       0 < aug.aspect_min <= aug.aspect_max, 'in (0, augment.aspect_max]'),
      ('augment.color_strength', aug.color_strength,
       aug.color_strength >= 0, '>= 0'),
      ('augment.highpass_sigma', aug.highpass_sigma,
       aug.highpass_sigma > 0, '> 0 (a fraction of the view side)'),
      ('augment.lighting_strength', aug.lighting_strength, aug.lighting_strength > 0, '> 0'),
  ] + [(f'augment.{name}', aug[name], 0 <= aug[name] <= 1, 'in [0, 1]')
       for name in views_lib.PROBABILITIES + ('highpass_prob', 'lighting_prob')]
  checks += [(field, value, False, accepted)
             for field, value, accepted in views_lib.group_problems(cfg)]
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


view_groups = views_lib.view_groups


def _union(boxes):
  """The smallest box holding all of `boxes`, each (top, left, h, w) int32 scalars."""
  top = functools.reduce(tf.minimum, [box[0] for box in boxes])
  left = functools.reduce(tf.minimum, [box[1] for box in boxes])
  bottom = functools.reduce(tf.maximum, [box[0] + box[2] for box in boxes])
  right = functools.reduce(tf.maximum, [box[1] + box[3] for box in boxes])
  return top, left, bottom - top, right - left


_COLOUR_SEEDS = '_colour_seeds'  # suffix of the per-view seeds the colour stage consumes


# Where `_views_of` leaves a view's colour ops: 'here' (float views, coloured),
# 'batched' (uint8 crops with their colour seeds, for `_colour_stage`) or 'device'
# (uint8 crops, for data/device.py).
_COLOUR_MODES = ('here', 'batched', 'device')


def _views_of(data_config, colour='here'):
  """(example, seed) -> {group name: views} for the recipe's view groups.

  All the views' crop boxes are drawn first, so the image is decoded once, and
  an encoded JPEG only in the window that holds every box
  (`sources.decode_window`). Each view is then cropped and resized straight
  from uint8 (`augment.crop_and_resize`) and flipped. With colour 'here' it gets
  the rest of `augment.simclr_view` at once; otherwise it is rounded to uint8 and
  `_colour_stage` ('batched', which also needs the view's colour seeds) or
  `device.py` ('device', in the jitted step) does the rest.
  Each view draws from the seeds `augment.simclr_view` would use, so every path
  crops and flips alike.
  """
  aug = data_config.augment
  groups = view_groups(data_config)
  aspect = (aug.aspect_min, aug.aspect_max)
  view_group = [group for group in groups for _ in range(group.count)]
  if colour not in _COLOUR_MODES:
    raise ValueError(f'colour={colour!r} must be one of {_COLOUR_MODES}.')
  colour_here = colour == 'here'

  # One traced function per group, reused for each of its views: this halves
  # the time to build the pipeline.
  def finish_fn(group):
    @functools.partial(tf.function, autograph=False)
    def finish(window, box, seeds):
      # Bicubic straight from uint8: levels in [0, 255], a little beyond at edges.
      resized = augment.crop_and_resize(window, box, group.size)
      if colour_here:
        image = tf.clip_by_value(resized / 255.0, 0.0, 1.0)
      else:
        image = tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)
      # Flipped after the resize, when the crop is usually the larger of the two.
      if aug.flip:
        image = augment.random_flip(image, seeds[1])
      if colour_here:
        return augment.colour_view(image, seeds[2:], aug, group)
      return image
    return finish

  finishers = {group.name: finish_fn(group) for group in groups}

  def views(example, seed):
    # As augment.simclr_view splits a view's seed: crop, flip, four colour ops.
    seeds = [augment.split_seed(view_seed, 6)
             for view_seed in tf.unstack(augment.split_seed(seed, len(view_group)))]

    # Boxes stay tuples of scalars: stacking them costs more ops than it saves.
    def crop_boxes(height, width):
      return [augment.sample_crop_box(s[0], height, width, g.area_range, aspect)
              for g, s in zip(view_group, seeds)]

    if 'encoded' in example:
      def plan(height, width):
        boxes = crop_boxes(height, width)
        top, left, window_h, window_w = _union(boxes)
        return ((top, left, window_h, window_w),
                tuple((box_top - top, box_left - left, h, w)
                      for box_top, box_left, h, w in boxes))
      window, boxes = sources.decode_window(example['encoded'], plan)
    else:
      window = example['image']
      boxes = crop_boxes(tf.shape(window)[0], tf.shape(window)[1])

    made = [finishers[g.name](window, boxes[i], seeds[i]) for i, g in enumerate(view_group)]
    out = {}
    for group in groups:
      group_views, made = made[:group.count], made[group.count:]
      group_seeds, seeds = seeds[:group.count], seeds[group.count:]
      if not group.stacked:
        out[group.name] = group_views[0]
      else:
        dtype = tf.float32 if colour_here else tf.uint8
        out[group.name] = tf.stack(group_views) if group_views else tf.zeros(
            [0, group.size, group.size, 3], dtype)
      if colour == 'batched' and group.count:
        colour_seeds = tf.stack([s[2:] for s in group_seeds])
        out[group.name + _COLOUR_SEEDS] = colour_seeds if group.stacked else colour_seeds[0]
    return out
  return views


def _compiled(build):
  """Memoises a builder of compiled functions by the recipe (augment, views and
  image size) and its other arguments: XLA compiles a tf.function once per process and
  input shape, so pipelines of the same recipe (tests, evaluation reruns) share it."""
  cache = {}

  def cached(data_config, *args):
    key = (data_config.augment.to_json(), data_config.views.to_json(),
           data_config.image_size, *args)
    if key not in cache:
      cache[key] = build(data_config, *args)
    return cache[key]
  return cached


@_compiled
def _colour_stage(data_config):
  """Batches of cropped, flipped uint8 views and their colour seeds -> float32
  views with `augment.colour_view` applied, each drawing from its own seeds.

  XLA compiles the whole batch into one loop over its views (fused ops, a branch
  taken per view), which costs a fraction of running tf's kernels view by view.
  Its random numbers differ from uncompiled tf's for the same seeds; the
  distribution is the same.
  """
  aug = data_config.augment
  groups = [group for group in view_groups(data_config) if group.count]

  @functools.partial(tf.function, jit_compile=True, autograph=False)
  def colour(batch):
    batch = dict(batch)
    for group in groups:
      views, seeds = batch[group.name], batch.pop(group.name + _COLOUR_SEEDS)
      view_shape = [group.size, group.size, 3]
      coloured = tf.map_fn(
          lambda args, g=group: augment.colour_view(args[0], args[1], aug, g),
          (to_float(tf.reshape(views, [-1, *view_shape])), tf.reshape(seeds, [-1, 4, 2])),
          fn_output_signature=tf.TensorSpec(view_shape, tf.float32))
      batch[group.name] = tf.reshape(coloured, tf.shape(views))
    return batch
  return colour


@_compiled
def _compiled_views(data_config, colour_on_host):
  """(positions [b], examples, augment_key) -> the batch's views, made by XLA in one loop over
  the examples, crops included: for small images of a static shape
  (`augment.crops_by_matrices`), where running tf's ops example by example costs
  many times the arithmetic."""
  make_views = _views_of(data_config, 'here' if colour_on_host else 'device')
  dtype = tf.float32 if colour_on_host else tf.uint8
  spec = {group.name: tf.TensorSpec(([group.count] if group.stacked else [])
                                    + [group.size, group.size, 3], dtype)
          for group in view_groups(data_config)}

  @functools.partial(tf.function, jit_compile=True, autograph=False)
  def batch_views(positions, examples, augment_key):
    def one(args):
      position, image = args
      seed = tf.random.experimental.stateless_fold_in(augment_key, position)
      return make_views({'image': image}, seed)
    views = tf.map_fn(one, (positions, examples['image']), fn_output_signature=spec)
    return {**views, 'label': examples['label'], 'index': examples['index'],
            'position': positions}
  return batch_views


def pretrain_dataset(data_config, source, *, local_batch_size, seed,
                     process_index=0, process_count=1, start_step=0,
                     colour_on_host=True) -> tf.data.Dataset:
  """The tf.data.Dataset behind `pretrain_batches`; batches carry 'position'.

  Small in-memory images are batched first and made into views by XLA
  (`_compiled_views`). Other images are decoded, cropped and flipped one by
  one, and the host's colour ops then run on whole batches (`_colour_stage`).
  """
  check_data_config(data_config)
  shard = source.dataset('train', process_index, process_count, decoded=False)
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
  image_spec = shard.element_spec.get('image')
  if image_spec is not None and augment.crops_by_matrices(image_spec.shape):
    batch_views = _compiled_views(data_config, colour_on_host)
    stream = stream.batch(local_batch_size, drop_remainder=True).map(
        lambda positions, examples: batch_views(positions, examples, augment_key),
        num_parallel_calls=tf.data.AUTOTUNE)
    return stream.prefetch(tf.data.AUTOTUNE)

  make_views = _views_of(data_config, 'batched' if colour_on_host else 'device')

  @_plain_tf
  def views(position, example):
    seed = tf.random.experimental.stateless_fold_in(augment_key, position)
    return {**make_views(example, seed), 'label': example['label'],
            'index': example['index'], 'position': position}

  # A file that fails to decode is dropped here, and counted by the gap it
  # leaves in the positions (see SkipCounter).
  stream = stream.map(views, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
  stream = stream.batch(local_batch_size, drop_remainder=True)
  if colour_on_host:
    stream = stream.map(_colour_stage(data_config), num_parallel_calls=tf.data.AUTOTUNE)
  return stream.prefetch(tf.data.AUTOTUNE)


class SkipCounter:
  """Strips 'position' from batches and counts the examples that never arrived.

  Positions are consecutive unless an example failed to decode, so the count
  is (positions spanned) - (examples delivered). A resumed run restarts at
  position start_step * b, so with skipped files it sees the stream shifted by
  the number skipped before the interruption.
  """

  def __init__(self, batches, first_position):
    self._batches = batches
    self._next_position = first_position
    self.skipped = 0

  def __iter__(self):
    return self

  def __next__(self):
    batch = dict(next(self._batches))
    positions = batch.pop('position')
    self.skipped += int(positions[-1]) + 1 - self._next_position - len(positions)
    self._next_position = int(positions[-1]) + 1
    return batch


def pretrain_batches(data_config, source, *, local_batch_size, seed,
                     process_index=0, process_count=1, start_step=0,
                     colour_on_host=True) -> SkipCounter:
  """Infinite batches of the config's view groups (data/views.py), 'label': int32 [b]
  and 'index': int32 [b], each example's position in the training split.

  A group of one view is float32 [b, S, S, 3], of n views [b, n, S, S, 3]. Without
  `colour_on_host` the views are uint8 crops, flipped, for `data.device`. View
  transforms are not applied here: they run on the devices (`data.transforms`).

  Step k's batch depends only on (seed, k, process_index); starting at
  `start_step` gives the same batches as advancing a fresh iterator. The
  iterator's `skipped` counts the images that failed to decode.
  """
  dataset = pretrain_dataset(
      data_config, source, local_batch_size=local_batch_size, seed=seed,
      process_index=process_index, process_count=process_count,
      start_step=start_step, colour_on_host=colour_on_host)
  return SkipCounter(dataset.as_numpy_iterator(), start_step * local_batch_size)


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


class EvalBatches:
  """The `num_batches` batches of `eval_batches`; once they are all read,
  `skipped` holds the positions of this process's examples that failed to
  decode."""

  def __init__(self, batches, num_batches, positions):
    self._batches = batches
    self.num_batches = num_batches
    self._expected = positions
    self._delivered = []

  def __iter__(self):
    return self

  def __next__(self):
    batch = next(self._batches)
    self._delivered.append(batch['index'][batch['mask']])
    return batch

  @property
  def skipped(self):
    delivered = np.concatenate(self._delivered) if self._delivered else []
    return np.setdiff1d(self._expected, delivered)


def eval_batches(data_config, source, split, *, local_batch_size,
                 process_index=0, process_count=1, max_examples=0) -> EvalBatches:
  """One pass: {'image': float32 [b, S, S, 3], 'label': int32, 'index': int32,
  'mask': bool}, where 'index' is the example's position in its split.

  Every process yields as many batches as the process with the most examples
  needs, the tail padded with mask=False (index -1), so jitted multi-host steps
  stay in lockstep. Images that fail to decode are left out (see
  `EvalBatches.skipped`). `max_examples` > 0 reads only the split's first
  max_examples positions.
  """
  check_data_config(data_config)
  size = data_config.image_size
  limit = max_examples or np.iinfo(np.int32).max
  positions = source.positions(split, process_index, process_count)
  num_batches = max(
      math.ceil(np.sum(source.positions(split, p, process_count) < limit)
                / local_batch_size) for p in range(process_count))

  @_plain_tf
  def prepare(example):
    image = (sources.decode(example['encoded']) if 'encoded' in example
             else example['image'])
    return {'image': eval_image(image, size, data_config.eval_crop_fraction),
            'label': example['label'], 'index': example['index'],
            'mask': example['index'] < limit}

  padding = tf.data.Dataset.from_tensors({
      'image': tf.zeros([size, size, 3]), 'label': 0, 'index': -1,
      'mask': False}).repeat()
  ds = source.dataset(split, process_index, process_count, decoded=False)
  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
  ds = ds.concatenate(padding).batch(local_batch_size, drop_remainder=True)
  ds = ds.take(num_batches)
  return EvalBatches(ds.prefetch(tf.data.AUTOTUNE).as_numpy_iterator(),
                     num_batches, positions[positions < limit])
