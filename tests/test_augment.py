"""Each SimCLR augmentation against its definition on hand-made images."""
import numpy as np
import pytest
import tensorflow as tf

from jax_ssl.config import base_config
from jax_ssl.data import augment

N_SEEDS = 1000  # enough for rates to be within ~4 standard deviations


def many(fn, image, n=N_SEEDS):
  """fn(image, seed) for seeds [i, 7], i < n, stacked: [n, ...] numpy."""
  image = tf.constant(image, tf.float32)
  seeds = tf.data.Dataset.range(n).map(
      lambda i: tf.stack([i, tf.constant(7, tf.int64)]))
  ds = seeds.map(lambda s: fn(image, s)).batch(n)
  return next(iter(ds)).numpy()


def colourful(h=12, w=10, seed=0):
  return np.random.default_rng(seed).uniform(size=(h, w, 3)).astype(np.float32)


def augment_config(**overrides):
  cfg = base_config().data.augment
  cfg.update(overrides)
  return cfg


def test_grayscale_is_luma_replicated_at_its_rate():
  image = colourful()
  luma = image @ np.array([0.2989, 0.5870, 0.1140], np.float32)
  gray = np.repeat(luma[..., None], 3, axis=-1)
  np.testing.assert_allclose(augment.to_grayscale(image), gray, atol=1e-6)
  np.testing.assert_allclose(augment.to_grayscale(image),
                             np.repeat(tf.image.rgb_to_grayscale(image), 3, -1),
                             atol=1e-6)
  out = many(lambda x, s: augment.random_grayscale(x, s, 0.2), image)
  is_gray = np.all(np.isclose(out, gray, atol=1e-6), axis=(1, 2, 3))
  is_same = np.all(out == image, axis=(1, 2, 3))
  assert np.all(is_gray ^ is_same)
  assert abs(is_gray.mean() - 0.2) < 0.05


def test_flip_mirrors_half_the_time():
  image = colourful()
  out = many(augment.random_flip, image)
  flipped = np.all(out == image[:, ::-1], axis=(1, 2, 3))
  same = np.all(out == image, axis=(1, 2, 3))
  assert np.all(flipped ^ same)
  assert abs(flipped.mean() - 0.5) < 0.06


def test_color_jitter_strength_zero_and_prob_zero_are_identity():
  image = colourful()
  np.testing.assert_array_equal(augment.color_jitter(image, [1, 2], 0.0),
                                image)
  out = many(lambda x, s: augment.color_distortion(x, s, 1.0, 0.0), image, 50)
  np.testing.assert_array_equal(out, np.broadcast_to(image, out.shape))


def test_brightness_is_multiplicative_within_0_8_strength():
  # On a uniform gray image contrast, saturation and hue change nothing, so
  # the output is v * factor with factor ~ U[1 - 0.8 s, 1 + 0.8 s] (SimCLR v2).
  v = 0.25
  out = many(lambda x, s: augment.color_jitter(x, s, 1.0),
             np.full((6, 6, 3), v, np.float32), 400)
  assert np.ptp(out, axis=(1, 2, 3)).max() < 1e-5  # still uniform gray
  ratio = out[:, 0, 0, 0] / v
  assert ratio.min() >= 0.2 - 1e-4 and ratio.max() <= 1.8 + 1e-4
  assert ratio.min() < 0.25 and ratio.max() > 1.75  # spans the whole range
  half = many(lambda x, s: augment.color_jitter(x, s, 0.5),
              np.full((6, 6, 3), v, np.float32), 400)[:, 0, 0, 0] / v
  assert half.min() >= 0.6 - 1e-4 and half.max() <= 1.4 + 1e-4


def test_color_jitter_changes_colour_in_range_and_at_its_rate():
  image = colourful()
  out = many(lambda x, s: augment.color_distortion(x, s, 1.0, 0.8), image)
  assert out.min() >= 0 and out.max() <= 1
  changed = np.abs(out - image).max(axis=(1, 2, 3)) > 1e-3
  assert abs(changed.mean() - 0.8) < 0.05
  # Hue and saturation move colours: channel differences are not preserved.
  spread = np.ptp(out[changed], axis=-1).mean(axis=(1, 2))
  assert np.std(spread) > 0.02


def test_gaussian_blur_of_impulse_is_normalised_gaussian():
  sigma, radius = 1.3, 3
  impulse = np.zeros((15, 15, 3), np.float32)
  impulse[7, 7] = 1.0
  out = augment.gaussian_blur(impulse, sigma, radius).numpy()
  x = np.arange(-radius, radius + 1)
  k = np.exp(-x**2 / (2 * sigma**2))
  k /= k.sum()
  expected = np.zeros((15, 15))
  expected[4:11, 4:11] = np.outer(k, k)
  for c in range(3):
    np.testing.assert_allclose(out[..., c], expected, atol=1e-6)
  np.testing.assert_allclose(out.sum(axis=(0, 1)), 1.0, atol=1e-5)


@pytest.mark.parametrize("shape, sigma, radius", [((224, 224), 1.7, 11), ((96, 100), 0.6, 4),
                                                  ((45, 70), 2.0, 2), ((20, 24), 1.0, 4)])
def test_blur_is_the_reflected_gaussian_convolution(shape, sigma, radius):
  """The banded products equal a plain NumPy convolution of the reflect-padded image, on
  sides that are and are not multiples of the 32-row block, and smaller than it."""
  image = np.random.default_rng(0).random((*shape, 3)).astype(np.float32)
  taps = np.exp(-np.arange(-radius, radius + 1)**2 / (2 * sigma**2))
  taps /= taps.sum()
  padded = np.pad(image.astype(np.float64), [(radius, radius), (radius, radius), (0, 0)],
                  mode="reflect")
  rows = sum(t * padded[i:i + shape[0]] for i, t in enumerate(taps))
  expected = sum(t * rows[:, i:i + shape[1]] for i, t in enumerate(taps))
  got = augment.gaussian_blur(tf.constant(image), sigma, radius).numpy()
  np.testing.assert_allclose(got, expected, atol=2e-6)


def test_blur_keeps_constant_image_constant_even_at_borders():
  image = np.full((20, 24, 3), 0.6, np.float32)
  out = augment.gaussian_blur(image, 2.0, 4).numpy()
  np.testing.assert_allclose(out, image, atol=1e-5)
  out = many(lambda x, s: augment.random_gaussian_blur(x, s, 1.0), image, 20)
  np.testing.assert_allclose(out, np.broadcast_to(image, out.shape), atol=1e-5)


def test_random_blur_kernel_is_a_tenth_of_the_side_with_sigma_in_range():
  side = 60  # kernel side 6 -> radius 3, support 7 pixels
  impulse = np.zeros((side, side, 3), np.float32)
  impulse[30, 30] = 1.0
  out = many(lambda x, s: augment.random_gaussian_blur(x, s, 0.5), impulse,
             400)[..., 0]
  blurred = out[:, 30, 30] < 1.0
  assert abs(blurred.mean() - 0.5) < 0.08
  support = np.abs(out[blurred]).max(axis=0) > 0
  assert support[27:34, 27:34].all() and support.sum() == 49
  # Neighbour / centre = exp(-1 / (2 sigma^2)) recovers sigma.
  ratio = out[blurred, 30, 31] / out[blurred, 30, 30]
  sigma = np.sqrt(-1 / (2 * np.log(np.maximum(ratio, 1e-30))))
  assert sigma.min() >= 0.1 - 1e-3 and sigma.max() <= 2.0 + 1e-3
  assert sigma.min() < 0.4 and sigma.max() > 1.7


def test_crop_boxes_stay_within_area_and_aspect_ranges():
  height, width = 200, 300
  boxes = many(lambda x, s: tf.stack(augment.sample_crop_box(
      s, height, width, (0.08, 1.0), (3 / 4, 4 / 3))), np.zeros([1]), 2000)
  top, left, h, w = boxes.T
  assert (top >= 0).all() and (left >= 0).all()
  assert (top + h <= height).all() and (left + w <= width).all()
  area = h * w / (height * width)
  assert area.min() >= 0.08 * 0.97 and area.max() <= 1.0
  assert area.min() < 0.1 and area.max() > 0.85  # 0.887: 200 x 266
  aspect = w / h
  assert aspect.min() >= 0.75 * 0.98 and aspect.max() <= 4 / 3 * 1.02
  assert aspect.min() < 0.8 and aspect.max() > 1.25
  assert np.ptp(top) > 100 and np.ptp(left) > 150  # offsets vary


def test_crop_falls_back_to_centre_crop_with_clamped_aspect():
  # A 4:1 image cannot hold a >= 99% area box with aspect <= 4/3.
  box = augment.sample_crop_box([3, 4], 100, 400, (0.99, 1.0), (3 / 4, 4 / 3))
  assert [int(v) for v in box] == [0, 133, 100, 133]


def test_random_resized_crop_resizes_the_sampled_box():
  image = colourful(40, 30)
  seed = tf.constant([5, 9])
  top, left, h, w = [int(v) for v in augment.sample_crop_box(
      seed, 40, 30, (0.08, 1.0), (3 / 4, 4 / 3))]
  out = augment.random_resized_crop(image, seed, 16)
  expected = tf.image.resize(image[top:top + h, left:left + w], [16, 16],
                             method='bicubic')
  np.testing.assert_allclose(out, np.clip(expected, 0, 1), atol=1e-6)
  # Full-area square crop of a square image at its own size is the identity;
  # small images are upscaled.
  square = colourful(16, 16)
  np.testing.assert_allclose(
      augment.random_resized_crop(square, seed, 16, (1, 1), (1, 1)), square,
      atol=1e-6)
  assert augment.random_resized_crop(square[:5, :5], seed, 32).shape == (
      32, 32, 3)


@pytest.mark.parametrize('shape, box, size', [
    ((40, 30), (5, 7, 20, 16), 16),   # downscaled, away from the image's edges
    ((32, 32), (0, 0, 32, 32), 24),   # the whole image
    ((28, 28), (9, 3, 19, 25), 32),   # upscaled, touching the bottom edge
    ((7, 5), (0, 0, 7, 5), 32),       # a tiny image upscaled
])
def test_matrix_crop_is_tf_resize_of_the_slice(shape, box, size):
  """Small static images are cropped by matrix products (which XLA compiles); they
  equal slicing and tf.image.resize to float rounding, at the crop's edges too."""
  image = np.random.default_rng(1).integers(0, 256, (*shape, 3), np.uint8)
  assert augment.crops_by_matrices(image.shape)
  top, left, h, w = box
  expected = tf.image.resize(image[top:top + h, left:left + w], [size, size],
                             method='bicubic').numpy()
  # uint8 input gives levels in [0, 255]; float input in [0, 1] gives them / 255.
  for dtype, scale, atol in ((np.uint8, 1, 1e-3), (np.float32, 1 / 255, 4e-6)):
    got = augment.crop_and_resize(tf.constant((image * scale).astype(dtype)), box, size)
    np.testing.assert_allclose(got, expected * scale, atol=atol)
  compiled = tf.function(lambda x: augment.crop_and_resize(x, box, size), jit_compile=True)
  np.testing.assert_allclose(compiled(tf.constant(image)), expected, atol=1e-3)


def test_large_or_dynamic_images_are_sliced_and_resized():
  assert not augment.crops_by_matrices((224, 224, 3))
  assert not augment.crops_by_matrices((None, 32, 3))
  assert augment.crops_by_matrices((128, 128, 3))


def test_simclr_view_with_everything_off_is_identity():
  image = colourful(16, 16)
  off = augment_config(crop_area_min=1.0, aspect_min=1.0, aspect_max=1.0,
                       flip=False, color_prob=0.0, grayscale_prob=0.0,
                       blur_prob=0.0)
  out = many(lambda x, s: augment.simclr_view(x, s, off, 16), image, 10)
  np.testing.assert_allclose(out, np.broadcast_to(image, out.shape),
                             atol=1e-6)


def test_simclr_view_is_deterministic_per_seed_and_ends_gray_if_asked():
  image = colourful(32, 24)
  cfg = augment_config()
  one = augment.simclr_view(image, tf.constant([1, 2]), cfg, 20)
  np.testing.assert_array_equal(
      one, augment.simclr_view(image, tf.constant([1, 2]), cfg, 20))
  assert np.abs(one - augment.simclr_view(image, tf.constant([1, 3]), cfg,
                                          20)).max() > 0.05
  gray = many(lambda x, s: augment.simclr_view(
      x, s, augment_config(grayscale_prob=1.0), 20), image, 30)
  assert gray.shape == (30, 20, 20, 3) and gray.min() >= 0 and gray.max() <= 1
  np.testing.assert_allclose(gray[..., 0], gray[..., 2], atol=1e-5)


def test_color_jitter_rejects_hue_beyond_half_a_turn():
  with pytest.raises(ValueError, match='strength'):
    augment.color_jitter(colourful(), [0, 0], 3.0)


def test_solarize_inverts_bright_pixels_at_its_rate():
  image = np.array([[[0.1, 0.49, 0.5]], [[0.7, 1.0, 0.0]]], np.float32)
  np.testing.assert_allclose(augment.solarize(image),
                             [[[0.1, 0.49, 0.5]], [[0.3, 0.0, 0.0]]], atol=1e-7)
  bright = np.full((4, 4, 3), 0.9, np.float32)
  out = many(lambda x, s: augment.random_solarize(x, s, 0.2), bright)
  rate = np.mean(out[:, 0, 0, 0] < 0.5)
  assert abs(rate - 0.2) < 4 * np.sqrt(0.2 * 0.8 / len(out)), rate


def lit_stroke(side=28, stroke=True):
  """A dark vertical stroke over a strong diagonal colour gradient."""
  t = (np.add.outer(np.arange(side), np.arange(side)) / (2 * (side - 1)))[..., None]
  image = (0.9 * (1 - t) * np.array([1.0, 0.3, 0.1]) + t * np.array([0.1, 0.8, 0.9]))
  if stroke:
    image[6:22, 13:15] = 0.05
  return image.astype(np.float32)


def test_highpass_takes_the_lighting_out_and_keeps_the_stroke():
  lighting = lit_stroke(stroke=False)[4:-4, 4:-4]
  flat = augment.highpass(tf.constant(lit_stroke(stroke=False)), 0.1).numpy()[4:-4, 4:-4]
  # Away from the borders the gradient spans over a third of the range in every channel;
  # after the high-pass it is mid-grey within 0.01.
  assert np.ptp(lighting.reshape(-1, 3), axis=0).min() > 0.35
  assert np.abs(flat - 0.5).max() < 0.01
  # The stroke stays darker than its surround by most of its contrast.
  out = augment.highpass(tf.constant(lit_stroke()), 0.1).numpy()
  assert (out[8:20, 13:15] < 0.5 - 0.25).all()


def test_highpass_applies_at_its_rate_before_the_colour_ops():
  image = lit_stroke(16)
  cfg = augment_config(crop_area_min=1.0, aspect_min=1.0, aspect_max=1.0, flip=False,
                       color_prob=0.0, grayscale_prob=0.0, blur_prob=0.0, highpass_prob=0.3)
  out = many(lambda x, s: augment.simclr_view(x, s, cfg, 16), image)
  passed = np.isclose(out, augment.highpass(tf.constant(image), 0.1).numpy(),
                      atol=1e-5).all(axis=(1, 2, 3))
  unchanged = np.isclose(out, image, atol=1e-5).all(axis=(1, 2, 3))
  assert (passed | unchanged).all()
  assert abs(passed.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / len(out)), passed.mean()
  # It comes first, and the colour ops after it draw what they draw without it: a view
  # with it always on is the same seed's view without it of the high-passed image.
  whole = dict(crop_area_min=1.0, aspect_min=1.0, aspect_max=1.0, flip=False,
               grayscale_prob=0.5)
  with_it = many(lambda x, s: augment.simclr_view(
      x, s, augment_config(highpass_prob=1.0, **whole), 16), image, 50)
  without = many(lambda x, s: augment.simclr_view(x, s, augment_config(**whole), 16),
                 augment.highpass(tf.constant(image), 0.1).numpy(), 50)
  np.testing.assert_allclose(with_it, without, atol=1e-5)
  assert np.ptp(with_it, axis=0).max() > 0.2  # the colour ops did vary the views


def test_lighting_adds_a_linear_ramp_whose_direction_varies_from_view_to_view():
  grey = np.full((9, 9, 3), 0.5, np.float32)
  # Along the x axis in red only: the left side -0.5 x strength, the right +0.5, the
  # centre unchanged, and the other channels untouched.
  lit = augment.add_lighting(tf.constant(grey), 0.0, tf.constant([1.0, 0.0, 0.0]), 0.8).numpy()
  np.testing.assert_allclose(lit[:, 0, 0], 0.1, atol=1e-6)
  np.testing.assert_allclose(lit[:, -1, 0], 0.9, atol=1e-6)
  np.testing.assert_allclose(lit[4, 4], 0.5, atol=1e-6)
  np.testing.assert_allclose(lit[..., 1:], 0.5, atol=1e-6)
  # Drawn views: every change is linear in the pixel position (a plane per channel), and
  # the planes' directions spread over the circle.
  views = many(lambda x, s: augment.random_lighting(x, s, 0.5), grey) - 0.5
  y, x = np.mgrid[0:9, 0:9] / 8 - 0.5
  basis = np.stack([x.ravel(), y.ravel()], 1)
  slopes, residual, *_ = np.linalg.lstsq(basis, views.transpose(1, 2, 0, 3).reshape(81, -1),
                                         rcond=None)
  assert residual.max() < 1e-8
  slopes = slopes.reshape(2, len(views), 3)  # (x, y) slope of each view's channels
  channel = np.hypot(*slopes).argmax(axis=1)  # each view's most lit channel
  rows = np.arange(len(views))
  angles = np.arctan2(slopes[1, rows, channel], slopes[0, rows, channel])
  assert np.histogram(angles, bins=4, range=(-np.pi, np.pi))[0].min() > len(views) / 8


def test_lighting_comes_before_the_colour_ops_and_leaves_their_draws_alone():
  image = lit_stroke(16)
  whole = dict(crop_area_min=1.0, aspect_min=1.0, aspect_max=1.0, flip=False,
               grayscale_prob=0.5)
  with_it = many(lambda x, s: augment.simclr_view(
      x, s, augment_config(lighting_prob=1.0, **whole), 16), image, 100)
  without = many(lambda x, s: augment.simclr_view(x, s, augment_config(**whole), 16),
                 image, 100)
  assert np.abs(with_it - without).max() > 0.2  # it did light the views
  # Grayscale comes after it (a lit view turned grey stays grey) and draws as it did
  # without it: the same seeds give grey views.
  def is_grey(views):
    return np.ptp(views, axis=-1).max(axis=(1, 2)) < 1e-5

  np.testing.assert_array_equal(is_grey(with_it), is_grey(without))
  assert 0.3 < is_grey(without).mean() < 0.7
  # After the high-pass: with no colour op, a view less the high-passed image is a plane
  # in every channel wherever it was not clipped.
  plain = dict(whole, color_prob=0.0, grayscale_prob=0.0)
  lit = many(lambda x, s: augment.simclr_view(x, s, augment_config(
      lighting_prob=1.0, lighting_strength=0.3, highpass_prob=1.0, **plain), 16), image, 20)
  light = lit - augment.highpass(tf.constant(image), 0.1).numpy()
  y, x = np.mgrid[0:16, 0:16] / 15 - 0.5
  basis = np.stack([x.ravel(), y.ravel(), np.ones(256)], 1)
  for view, change in zip(lit.reshape(20, 256, 3), light.reshape(20, 256, 3)):
    for c in range(3):
      inside = (view[:, c] > 1e-6) & (view[:, c] < 1 - 1e-6)
      fit = np.linalg.lstsq(basis[inside], change[inside, c], rcond=None)[0]
      np.testing.assert_allclose(basis[inside] @ fit, change[inside, c], atol=1e-5)
      assert abs(fit[2]) < 1e-5  # a ramp through the centre: no overall shift


def test_byol_jitter_amounts_bound_each_factor():
  """BYOL's (0.4, 0.4, 0.2, 0.1): saturation alone moves at most 20%."""
  gray = np.full((6, 6, 3), 0.5, np.float32)
  out = many(lambda x, s: augment.color_jitter(x, s, 1.0, (0.4, 0.0, 0.0, 0.0)), gray)
  assert 0.5 * 0.6 - 1e-5 <= out.min() and out.max() <= 0.5 * 1.4 + 1e-5
  assert out.max() - out.min() > 0.3  # the full range is used
