"""SimCLR augmentations as small, stateless tf functions for host tf.data.

Every op takes a float32 image in [0, 1] of shape [h, w, 3] and a stateless
seed (shape [2], int32/int64) and uses `tf.random.stateless_*` ops only, so a
view depends on its seed alone, never on tf.data's map order or on a global
random state. Ops needing several random numbers split their seed or draw
one vector of uniforms from it.

Semantics follow google-research/simclr `tf2/data_util.py` (SimCLR v2):
multiplicative brightness, jitter ops in random order with a clip after each,
blur with a kernel side of 10% of the image side and sigma ~ U[0.1, 2.0].

The ops also compile with XLA, which the pipeline uses to run them over whole
batches (`pipeline._colour_stage`, `pipeline._compiled_views`): small images of
a static shape are cropped by matrix products, and no op slices at a tensor
index. Compiled, the stateless ops draw different numbers for the same seed
than uncompiled tf does, from the same distributions.
"""
import dataclasses
import functools
import math

import numpy as np
import tensorflow as tf

# ITU-R 601 luma weights, the ones `tf.image.rgb_to_grayscale` uses.
GRAYSCALE_WEIGHTS = (0.2989, 0.5870, 0.1140)
CROP_ATTEMPTS = 10  # torchvision's count before the centre-crop fallback


def split_seed(seed, num):
  """`num` independent stateless seeds, shape [num, 2], from one seed."""
  return tf.random.experimental.stateless_split(seed, num)


def _coin(seed, prob):
  """A boolean that is True with probability `prob`."""
  return tf.random.stateless_uniform([], seed) < prob


def random_apply(fn, image, seed, prob):
  """`fn(image, fn_seed)` with probability `prob`, else `image`."""
  coin_seed, fn_seed = tf.unstack(split_seed(seed, 2))
  return tf.cond(_coin(coin_seed, prob), lambda: fn(image, fn_seed),
                 lambda: image)


# ----------------------------------------------------------------- crop ----
def sample_crop_box(seed, height, width, area_range=(0.08, 1.0),
                    aspect_range=(3 / 4, 4 / 3)):
  """Inception-style crop box (top, left, crop_height, crop_width), int32.

  Tries `CROP_ATTEMPTS` boxes whose area fraction is ~U[area_range] and whose
  aspect ratio (w / h) is log-uniform in aspect_range, keeps the first that
  fits, and falls back to the largest centred box with a clamped aspect ratio
  (as torchvision does; SimCLR's TF op falls back to the whole image).
  """
  attempts = CROP_ATTEMPTS
  # One draw, and no tf.cond: on small images the cost is the number of ops.
  u = tf.random.stateless_uniform([2 * attempts + 2], seed)
  h = tf.cast(height, tf.float32)
  w = tf.cast(width, tf.float32)
  area = h * w * (area_range[0] + (area_range[1] - area_range[0]) * u[:attempts])
  log_lo, log_hi = math.log(aspect_range[0]), math.log(aspect_range[1])
  aspect = tf.exp(log_lo + (log_hi - log_lo) * u[attempts:2 * attempts])
  # The fallback goes last, so the first box that fits is the fallback only when
  # no attempt does.
  image_aspect = w / h
  clamped = tf.clip_by_value(image_aspect, aspect_range[0], aspect_range[1])
  wide = image_aspect > clamped
  crop_w = tf.concat([tf.math.round(tf.sqrt(area * aspect)),
                      [tf.where(wide, tf.math.round(h * clamped), w)]], 0)
  crop_h = tf.concat([tf.math.round(tf.sqrt(area / aspect)),
                      [tf.where(wide, h, tf.math.round(w / clamped))]], 0)
  fits = (crop_w >= 1) & (crop_w <= w) & (crop_h >= 1) & (crop_h <= h)
  first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
  # gather, not crop_h[first]: XLA would need a slice's bounds as constants.
  crop_h, crop_w = tf.gather(crop_h, first), tf.gather(crop_w, first)
  # Offsets are uniform over the valid positions; the fallback is centred
  # because its box spans one full side, leaving (other_side - crop) / 2 off.
  fallback = tf.equal(first, attempts)
  top = tf.where(fallback, tf.math.floor((h - crop_h) / 2),
                 tf.minimum(tf.math.floor(u[-2] * (h - crop_h + 1)), h - crop_h))
  left = tf.where(fallback, tf.math.floor((w - crop_w) / 2),
                  tf.minimum(tf.math.floor(u[-1] * (w - crop_w + 1)), w - crop_w))
  return tuple(tf.cast(x, tf.int32) for x in (top, left, crop_h, crop_w))


# Images up to this many pixels, of a static shape, are cropped by matrix products.
MATRIX_CROP_MAX_PIXELS = 128 * 128
_CUBIC_TABLE = 1024  # tf's bicubic resize rounds each tap offset to 1/1024 pixel


def crops_by_matrices(shape):
  """Whether `crop_and_resize` crops an image of `shape` by matrix products: it
  then has static shapes throughout, so XLA can compile it."""
  height, width = shape[0], shape[1]
  return height is not None and width is not None and height * width <= MATRIX_CROP_MAX_PIXELS


def _keys_cubic(x, a=-0.5):
  x = tf.abs(x)
  return tf.where(x <= 1.0, ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0,
                  tf.where(x < 2.0, ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a, 0.0))


def _bicubic_matrix(start, length, size, n):
  """[size, n]: resizes pixels [start, start + length) of an axis of n pixels to `size`.

  The weights are those tf.image.resize's bicubic kernel gives the sliced crop (Keys,
  a = -0.5, half-pixel centres): taps beyond the crop get none and the others are
  renormalised, and each tap offset is rounded to 1/1024 as tf's weight table is.
  """
  start, length = tf.cast(start, tf.float32), tf.cast(length, tf.float32)
  centre = (tf.range(size, dtype=tf.float32) + 0.5) * (length / size) - 0.5
  base = tf.math.floor(centre)
  offset = tf.math.round((centre - base) * _CUBIC_TABLE) / _CUBIC_TABLE
  taps = tf.constant([-1.0, 0.0, 1.0, 2.0])
  in_crop = (base[:, None] + taps >= 0) & (base[:, None] + taps < length)
  weights = tf.where(in_crop, _keys_cubic(offset[:, None] - taps), 0.0)
  weights /= tf.reduce_sum(weights, axis=1, keepdims=True)
  pixels = tf.cast(tf.clip_by_value(base[:, None] + taps, 0.0, length - 1.0) + start, tf.int32)
  return tf.einsum('sk,skn->sn', weights, tf.one_hot(pixels, n))


def crop_and_resize(image, box, size):
  """The box (top, left, height, width) of `image` resized bicubically (as SimCLR) to
  [size, size], float32 in the input's levels (uint8 input gives [0, 255], a little
  beyond at sharp edges).

  Small images of a static shape (`crops_by_matrices`) are cropped by two matrix
  products, which XLA compiles and which equal tf.image.resize of the slice to float
  rounding; others are sliced and resized.
  """
  top, left, height, width = box
  if not crops_by_matrices(image.shape):
    crop = image[top:top + height, left:left + width]
    return tf.image.resize(crop, [size, size], method='bicubic')
  rows = _bicubic_matrix(top, height, size, image.shape[0])
  columns = _bicubic_matrix(left, width, size, image.shape[1])
  resized = tf.einsum('ij,jwc->iwc', rows, tf.cast(image, tf.float32))
  return tf.einsum('kw,iwc->ikc', columns, resized)


def random_resized_crop(image, seed, size, area_range=(0.08, 1.0),
                        aspect_range=(3 / 4, 4 / 3)):
  """A random crop (see `sample_crop_box`) resized to [size, size, 3], in [0, 1]."""
  shape = tf.shape(image)
  box = sample_crop_box(seed, shape[0], shape[1], area_range, aspect_range)
  return tf.clip_by_value(crop_and_resize(image, box, size), 0.0, 1.0)


def random_flip(image, seed):
  """Mirrors left-right with probability 1/2."""
  # tf.reverse, not image[:, ::-1]: the negative-stride slice is ~20x slower on CPU.
  return tf.cond(_coin(seed, 0.5), lambda: tf.reverse(image, [1]), lambda: image)


# ---------------------------------------------------------------- colour ----
SIMCLR_JITTER = (0.8, 0.8, 0.8, 0.2)  # brightness, contrast, saturation, hue


def color_jitter(image, seed, strength, jitter=SIMCLR_JITTER):
  """Brightness, contrast, saturation and hue in random order.

  With (b, c, s, h) = strength * jitter (SimCLR: 0.8 s, 0.8 s, 0.8 s, 0.2 s;
  BYOL: 0.4, 0.4, 0.2, 0.1): brightness multiplies by a factor
  ~U[max(1 - b, 0), 1 + b] (SimCLR v2), contrast and saturation factors are
  ~U[max(1 - c, 0), 1 + c] and likewise for s, the hue shift is ~U[-h, h].
  Each op is followed by a clip to [0, 1]. strength 0 is the identity.
  """
  amounts = [strength * j for j in jitter]
  if strength < 0 or min(amounts) < 0 or amounts[3] > 0.5:
    raise ValueError(f'color jitter {amounts} must be >= 0 with a hue delta '
                     f'<= 0.5; got strength {strength}, jitter {jitter}.')
  if strength == 0:
    return image
  lower = tf.constant([max(1.0 - a, 0.0) for a in amounts[:3]])
  upper = tf.constant([1.0 + a for a in amounts[:3]])
  # One draw for all four parameters and the order: fewer ops per image.
  u = tf.random.stateless_uniform([8], seed)
  factors = lower + (upper - lower) * u[:3]
  hue_delta = amounts[3] * (2.0 * u[3] - 1.0)
  ops = [
      lambda x: x * factors[0],
      lambda x: tf.image.adjust_contrast(x, factors[1]),
      lambda x: tf.image.adjust_saturation(x, factors[2]),
      lambda x: tf.image.adjust_hue(x, hue_delta),
  ]
  order = tf.argsort(u[4:])

  def apply_next(i, image):
    branches = [functools.partial(op, image) for op in ops]
    return i + 1, tf.clip_by_value(tf.switch_case(tf.gather(order, i), branches), 0.0, 1.0)

  # A loop, not four copies of the switch: XLA compiles the four ops once, not 4 times.
  return tf.while_loop(lambda i, _: i < 4, apply_next, (0, image))[1]


def color_distortion(image, seed, strength, prob, jitter=SIMCLR_JITTER):
  """`color_jitter` applied with probability `prob` (SimCLR: 0.8)."""
  return random_apply(lambda x, s: color_jitter(x, s, strength, jitter), image,
                      seed, prob)


def to_grayscale(image):
  """Luma replicated to 3 channels."""
  luma = tf.tensordot(image, tf.constant(GRAYSCALE_WEIGHTS), axes=[[-1], [0]])
  return tf.tile(luma[..., None], [1, 1, 3])


def random_grayscale(image, seed, prob):
  return random_apply(lambda x, _: to_grayscale(x), image, seed, prob)


# ------------------------------------------------------------------ blur ----
def blur_radius(side):
  """SimCLR's kernel side is 10% of the image side, made odd: 2r + 1."""
  return side // 10 // 2


def _blur_taps(sigma, radius):
  """The 2r + 1 Gaussian weights at distances -r..r, summing to 1."""
  distance = tf.range(-radius, radius + 1, dtype=tf.float32)
  taps = tf.exp(-distance**2 / (2.0 * tf.cast(sigma, tf.float32)**2))
  return taps / tf.reduce_sum(taps)


_BAND_BLOCK = 32  # output rows per block of the banded product


def _toeplitz_block(taps, radius):
  """[32, 32 + 2r]: row i holds the taps at columns i..i + 2r, zeros elsewhere."""
  offsets = np.arange(_BAND_BLOCK + 2 * radius)[None, :] - np.arange(_BAND_BLOCK)[:, None]
  in_reach = (offsets >= 0) & (offsets <= 2 * radius)
  return tf.where(in_reach, tf.gather(taps, np.clip(offsets, 0, 2 * radius)), 0.0)


def _blur_rows(image, block, radius):
  """The Gaussian along axis 0 of `image` [n, ...], with reflected borders.

  After reflect-padding by `radius`, the convolution is one small Toeplitz block
  [32, 32 + 2r] (`_toeplitz_block`) applied to every window of 32 + 2r padded rows: a few
  thousand weights, where a whole [n, n] blur matrix would cost more to build than the
  blur itself.
  """
  n, rest = tf.shape(image)[0], tf.shape(image)[1:]
  width = _BAND_BLOCK + 2 * radius
  num_blocks = (n + _BAND_BLOCK - 1) // _BAND_BLOCK
  # REFLECT leaves the edge pixel out, as the taps reflected at the border do.
  padded = tf.pad(tf.reshape(image, [n, -1]), [[radius, radius], [0, 0]], mode='REFLECT')
  padded = tf.pad(padded, [[0, num_blocks * _BAND_BLOCK - n], [0, 0]])  # rows to discard
  windows = tf.gather(padded, tf.range(num_blocks)[:, None] * _BAND_BLOCK + tf.range(width))
  out = tf.reshape(tf.matmul(block, windows), [num_blocks * _BAND_BLOCK, -1])[:n]
  return tf.reshape(out, tf.concat([[n], rest], 0))


def gaussian_blur(image, sigma, radius):
  """Separable Gaussian blur with reflected borders, as two banded matrix products.

  On CPU at 224 px this takes a fraction of the time of dense [n, n] products (whose
  matrices alone cost more than the blur) or of tf.nn.depthwise_conv2d.
  `radius` must be smaller than both sides.
  """
  block = _toeplitz_block(_blur_taps(sigma, radius), radius)  # one block for both axes
  image = _blur_rows(image, block, radius)
  return tf.transpose(_blur_rows(tf.transpose(image, [1, 0, 2]), block, radius), [1, 0, 2])


def random_gaussian_blur(image, seed, prob, sigma_range=(0.1, 2.0)):
  """With probability `prob`, blur with sigma ~ U[sigma_range]."""
  # A static side makes the radius a constant tf can fold.
  radius = blur_radius(image.shape[0] or tf.shape(image)[0])

  def blur(x, blur_seed):
    sigma = tf.random.stateless_uniform([], blur_seed, *sigma_range)
    return gaussian_blur(x, sigma, radius)

  return random_apply(blur, image, seed, prob)


# ------------------------------------------------------------- high-pass ----
def highpass_radius(side, sigma):
  """3 sigma, at most side - 1 (a reflected border cannot reach further)."""
  return min(math.ceil(3 * sigma), side - 1)


def highpass(image, sigma_fraction):
  """The image minus its Gaussian blur of sigma = `sigma_fraction` x side, around mid-grey.

  Smooth lighting (a gradient across the background, vignetting, a tint) is what the blur
  keeps, so it leaves the view; strokes and edges stay. `side` is the view's shorter
  side, which must be static.
  """
  side = min(image.shape[:2])
  sigma = sigma_fraction * side
  blurred = gaussian_blur(image, sigma, highpass_radius(side, sigma))
  return tf.clip_by_value(image - blurred + 0.5, 0.0, 1.0)


def highpass_seed(blur_seed):
  """The high-pass op's seed, folded from the blur's so every other op keeps its draws."""
  return tf.random.experimental.stateless_fold_in(blur_seed, 1)


# ------------------------------------------------------------- lighting ----
def ramp(height, width, angle):
  """[H, W] distance along the direction `angle` from the centre, the image's sides
  spanning -0.5 to 0.5: a linear ramp of up to about +-0.7 at the corners."""
  y = tf.linspace(-0.5, 0.5, height)[:, None]
  x = tf.linspace(-0.5, 0.5, width)[None, :]
  return x * tf.cos(angle) + y * tf.sin(angle)


def add_lighting(image, angle, colour, strength):
  """The image plus a linear ramp along `angle` in the RGB direction `colour` ([3],
  each in [-1, 1]), scaled by `strength`."""
  height, width = image.shape[:2]
  light = strength * ramp(height, width, angle)[..., None] * colour
  return tf.clip_by_value(image + light, 0.0, 1.0)


def random_lighting(image, seed, strength):
  """`add_lighting` from a direction uniform on the circle and a colour uniform in
  [-1, 1]^3."""
  angle_seed, colour_seed = tf.unstack(split_seed(seed, 2))
  angle = tf.random.stateless_uniform([], angle_seed, 0.0, 2 * math.pi)
  colour = tf.random.stateless_uniform([3], colour_seed, -1.0, 1.0)
  return add_lighting(image, angle, colour, strength)


def lighting_seed(blur_seed):
  """The lighting op's seed, folded from the blur's as the high-pass's is."""
  return tf.random.experimental.stateless_fold_in(blur_seed, 2)


# ------------------------------------------------------------- solarize ----
def solarize(image, threshold=0.5):
  """Inverts the pixels at or above `threshold` (BYOL: 0.5 on [0, 1])."""
  return tf.where(image < threshold, image, 1.0 - image)


def random_solarize(image, seed, prob):
  return random_apply(lambda x, _: solarize(x), image, seed, prob)


# ----------------------------------------------------------------- views ----
def colour_view(image, seeds, augment_config, probs):
  """The part of a view after crop and flip: high-pass, lighting, colour jitter,
  grayscale, blur, solarize.

  `seeds` is [4, 2]: one seed for each of the four colour ops. `probs` carries each op's
  probability (`color_prob`, `grayscale_prob`, `blur_prob`, `solarize_prob`: a view
  group, data/views.py); the jitter amounts, the high-pass and the lighting, shared by
  every group, come from `augment_config`.
  """
  cfg = augment_config
  color_seed, gray_seed, blur_seed, solarize_seed = tf.unstack(seeds)
  if cfg.highpass_prob > 0:
    image = random_apply(lambda x, _: highpass(x, cfg.highpass_sigma), image,
                         highpass_seed(blur_seed), cfg.highpass_prob)
  if cfg.lighting_prob > 0:
    image = random_apply(lambda x, s: random_lighting(x, s, cfg.lighting_strength), image,
                         lighting_seed(blur_seed), cfg.lighting_prob)
  image = color_distortion(image, color_seed, cfg.color_strength,
                           probs.color_prob, tuple(cfg.jitter))
  image = random_grayscale(image, gray_seed, probs.grayscale_prob)
  if probs.blur_prob > 0:
    image = random_gaussian_blur(image, blur_seed, probs.blur_prob)
  if probs.solarize_prob > 0:
    image = random_solarize(image, solarize_seed, probs.solarize_prob)
  return tf.clip_by_value(image, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Probabilities:
  color_prob: float
  grayscale_prob: float
  blur_prob: float
  solarize_prob: float


def config_probabilities(augment_config, **overrides):
  """The op probabilities of `config.data.augment`, with any of them overridden."""
  return dataclasses.replace(
      Probabilities(augment_config.color_prob, augment_config.grayscale_prob,
                    augment_config.blur_prob, augment_config.solarize_prob),
      **{k: v for k, v in overrides.items() if v is not None})


def simclr_view(image, seed, augment_config, size, area_range=None,
                blur_prob=None, solarize_prob=None):
  """One view: crop, flip, high-pass, lighting, colour jitter, grayscale, blur, solarize,
  in order.

  The crop's area range and the blur and solarize probabilities default to
  the config's; BYOL's second view and multi-crop's local crops override them.
  """
  cfg = augment_config
  area_range = area_range or (cfg.crop_area_min, cfg.crop_area_max)
  probs = config_probabilities(cfg, blur_prob=blur_prob, solarize_prob=solarize_prob)
  seeds = split_seed(seed, 6)  # crop, flip, then the four colour ops
  image = random_resized_crop(image, seeds[0], size, area_range,
                              (cfg.aspect_min, cfg.aspect_max))
  if cfg.flip:
    image = random_flip(image, seeds[1])
  return colour_view(image, seeds[2:], cfg, probs)
