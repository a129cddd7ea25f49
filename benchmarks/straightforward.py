"""A straightforward tf.data SimCLR pipeline: the yardstick for `input_pipeline.py --path baseline`.

It is the recipe as a tf.data user would first write it from tf.image's ops, one
example at a time, with none of jax_ssl's speed work: decode the whole image once,
`tf.image.stateless_sample_distorted_bounding_box` for each view's crop, bicubic resize,
`stateless_random_flip_left_right`, the four jitter ops in a random order picked by
`tf.switch_case`, grayscale with `tf.image.rgb_to_grayscale`, and the blur as two depthwise
convolutions over a reflect-padded view. The distributions are SimCLR's as in
`jax_ssl.data.augment` up to details (the crop sampler's attempts and fallback); the views
are not meant to equal jax_ssl's.
"""
import functools

import tensorflow as tf

from jax_ssl.data import augment


def _apply_with_prob(fn, image, seed, prob):
  coin = tf.random.stateless_uniform([], seed) < prob
  return tf.cond(coin, lambda: fn(image), lambda: image)


def _jitter(image, seed, strength, jitter):
  b, c, s, h = (strength * amount for amount in jitter)
  seeds = tf.random.experimental.stateless_split(seed, 5)
  brightness = tf.random.stateless_uniform([], seeds[0], max(1.0 - b, 0.0), 1.0 + b)
  ops = [
      lambda x: x * brightness,
      lambda x: tf.image.stateless_random_contrast(x, max(1.0 - c, 0.0), 1.0 + c, seeds[1]),
      lambda x: tf.image.stateless_random_saturation(x, max(1.0 - s, 0.0), 1.0 + s, seeds[2]),
      lambda x: tf.image.stateless_random_hue(x, h, seeds[3]),
  ]
  order = tf.argsort(tf.random.stateless_uniform([4], seeds[4]))
  for i in range(4):
    image = tf.clip_by_value(tf.switch_case(order[i], [functools.partial(f, image) for f in ops]),
                             0.0, 1.0)
  return image


def _blur(image, seed):
  radius = augment.blur_radius(image.shape[0])  # the same kernel size as jax_ssl's
  sigma = tf.random.stateless_uniform([], seed, 0.1, 2.0)
  taps = augment._blur_taps(sigma, radius)  # pylint: disable=protected-access
  vertical = tf.tile(tf.reshape(taps, [-1, 1, 1, 1]), [1, 1, 3, 1])
  horizontal = tf.tile(tf.reshape(taps, [1, -1, 1, 1]), [1, 1, 3, 1])
  padded = tf.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]],
                  mode="REFLECT")
  out = tf.nn.depthwise_conv2d(padded, vertical, [1, 1, 1, 1], "VALID")
  return tf.nn.depthwise_conv2d(out, horizontal, [1, 1, 1, 1], "VALID")[0]


def view(image, seed, aug, size, blur_prob):
  """One SimCLR view of a uint8 [h, w, 3] image."""
  seeds = tf.random.experimental.stateless_split(seed, 7)
  begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.shape(image), tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seeds[0],
      min_object_covered=0.0, aspect_ratio_range=(aug.aspect_min, aug.aspect_max),
      area_range=(aug.crop_area_min, aug.crop_area_max), max_attempts=10)
  crop = tf.slice(image, begin, crop_size)
  out = tf.image.resize(tf.cast(crop, tf.float32) / 255.0, [size, size], method="bicubic")
  out = tf.clip_by_value(out, 0.0, 1.0)
  if aug.flip:
    out = tf.image.stateless_random_flip_left_right(out, seeds[1])
  out = _apply_with_prob(lambda x: _jitter(x, seeds[2], aug.color_strength, tuple(aug.jitter)),
                         out, seeds[3], aug.color_prob)
  out = _apply_with_prob(lambda x: tf.tile(tf.image.rgb_to_grayscale(x), [1, 1, 3]), out,
                         seeds[4], aug.grayscale_prob)
  if blur_prob > 0:
    out = _apply_with_prob(lambda x: _blur(x, seeds[5]), out, seeds[6], blur_prob)
  return tf.clip_by_value(out, 0.0, 1.0)


def pretrain_dataset(data_config, source, batch_size, seed=0):
  """Two views per image, {'view1', 'view2', 'label'}, in batches of `batch_size`."""
  aug, size = data_config.augment, data_config.image_size

  def two_views(index, example):
    if "encoded" in example:
      image = tf.io.decode_image(example["encoded"], channels=3, expand_animations=False)
    else:
      image = example["image"]
    first, second = tf.unstack(tf.random.experimental.stateless_split(
        tf.stack([tf.constant(seed, tf.int64), index]), 2))
    return {"view1": view(image, first, aug, size, aug.blur_prob),
            "view2": view(image, second, aug, size, aug.blur_prob), "label": example["label"]}

  ds = source.dataset("train", decoded=False).repeat().enumerate()
  ds = ds.map(two_views, num_parallel_calls=tf.data.AUTOTUNE)
  return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
