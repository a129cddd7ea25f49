"""Labelled training batches for linear evaluation and fine-tuning, and labelled fractions.

Training images get the standard protocol's augmentation: a random resized crop (area from
augment.labelled_crop_area_min to augment.crop_area_max, the aspect range of augment) and a
horizontal flip when augment.flip; test images go through `pipeline.eval_batches` (resize and
centre crop).
"""
import numpy as np
import tensorflow as tf

from jax_ssl.data import augment, pipeline, sources


def label_subset(labels, fraction, seed):
  """Boolean mask keeping round(fraction * n_c) examples (at least one) of every class c.

  The same labels, fraction and seed give the same mask on every machine.
  """
  labels = np.asarray(labels)
  keep = np.zeros(len(labels), bool)
  for label in np.unique(labels):
    members = np.flatnonzero(labels == label)
    count = max(1, int(round(fraction * len(members))))
    rng = np.random.default_rng([seed, int(label)])
    keep[rng.choice(members, count, replace=False)] = True
  return keep


def shard_labels(source, process_index=0, process_count=1):
  """The labels of this process's shard of the train split, in order (nothing decoded)."""
  ds = source.dataset("train", process_index, process_count, decoded=False)
  return np.fromiter(ds.map(lambda example: example["label"]).as_numpy_iterator(), np.int64)


def labelled_batches(data_config, source, *, local_batch_size, seed, keep=None,
                     process_index=0, process_count=1):
  """Infinite {'image': float32 [b, S, S, 3] in [0, 1], 'label': int32 [b]} batches.

  Reshuffled every epoch from `seed`; example i of the stream is augmented with a seed
  folded from (seed, i), so the batches are the same on every run. `keep`, a boolean mask
  over this process's shard, trains on a labelled fraction (a full pass over the split
  still reads every example; TFDS's imagenet2012_subset reads only its own). Images that
  fail to decode are skipped; the iterator's `skipped` counts them (pipeline.SkipCounter).
  """
  cfg, size = data_config.augment, data_config.image_size
  ds = source.dataset("train", process_index, process_count, decoded=False)
  if keep is not None:
    kept = tf.constant(keep)
    ds = ds.enumerate().filter(lambda i, example: kept[i]).map(lambda i, example: example)
  ds = ds.shuffle(data_config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
  key = tf.constant([seed, process_index], tf.int64)

  @tf.autograph.experimental.do_not_convert  # plain tf ops
  def crop_and_flip(position, example):
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(key, position), 2))
    image = sources.decode(example["encoded"]) if "encoded" in example else example["image"]
    image = augment.random_resized_crop(
        pipeline.to_float(image), crop_seed, size,
        (cfg.labelled_crop_area_min, cfg.crop_area_max), (cfg.aspect_min, cfg.aspect_max))
    if cfg.flip:
      image = augment.random_flip(image, flip_seed)
    return {"image": image, "label": example["label"], "position": position}

  # A file that fails to decode is dropped here, and counted by the gap it leaves.
  ds = ds.enumerate().map(crop_and_flip, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
  return pipeline.SkipCounter(ds.batch(local_batch_size, drop_remainder=True).prefetch(
      tf.data.AUTOTUNE).as_numpy_iterator(), 0)
