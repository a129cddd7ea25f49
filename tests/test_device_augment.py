"""Augmentation on the devices: each op is tf.image's, and the device paths draw
views from the same distributions as the host path."""
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from jax_ssl import config as config_lib, parallel
from jax_ssl.data import augment, device, pipeline

NUM_VIEWS = 1024  # per path, for the distribution tests


def hand_made_image(height=24, width=20):
  """Smooth colour gradients with a sharp-edged bright square: every op changes it."""
  y, x = np.mgrid[0:height, 0:width] / max(height, width)
  image = np.stack([0.2 + 0.6 * y, 0.8 - 0.5 * x, 0.5 + 0.3 * np.sin(6 * x * y)], -1)
  image[height // 4:height // 2, width // 4:width // 2] = (0.95, 0.9, 0.2)
  return image.astype(np.float32)


def augment_config(**overrides):
  cfg = config_lib.base_config().data.augment
  with cfg.unlocked():
    cfg.update(overrides)
  return cfg


# ------------------------------------------------------------ single ops ----
@pytest.mark.parametrize("name, jax_op, tf_op", [
    ("contrast 1.6", lambda x: device.adjust_contrast(x, 1.6),
     lambda x: tf.image.adjust_contrast(x, 1.6)),
    ("contrast 0.3", lambda x: device.adjust_contrast(x, 0.3),
     lambda x: tf.image.adjust_contrast(x, 0.3)),
    ("saturation 1.7", lambda x: device.adjust_saturation(x, 1.7),
     lambda x: tf.image.adjust_saturation(x, 1.7)),
    ("saturation 0.2", lambda x: device.adjust_saturation(x, 0.2),
     lambda x: tf.image.adjust_saturation(x, 0.2)),
    ("hue +0.3", lambda x: device.adjust_hue(x, 0.3), lambda x: tf.image.adjust_hue(x, 0.3)),
    ("hue -0.45", lambda x: device.adjust_hue(x, -0.45),
     lambda x: tf.image.adjust_hue(x, -0.45)),
    ("rgb to hsv", device.rgb_to_hsv, tf.image.rgb_to_hsv),
    ("grayscale", device.to_grayscale, augment.to_grayscale),
    ("blur sigma 1.3", lambda x: device.gaussian_blur(x, 1.3),
     lambda x: augment.gaussian_blur(x, 1.3, augment.blur_radius(x.shape[0]))),
    ("solarize", device.solarize, augment.solarize),
    ("high-pass 0.1", lambda x: device.highpass(x, 0.1), lambda x: augment.highpass(x, 0.1)),
    ("high-pass 0.5 (radius side - 1)", lambda x: device.highpass(x, 0.5),
     lambda x: augment.highpass(x, 0.5)),
    ("lighting", lambda x: device.add_lighting(x, 2.1, jnp.array([0.9, -0.4, 0.2]), 1.3),
     lambda x: augment.add_lighting(x, 2.1, tf.constant([0.9, -0.4, 0.2]), 1.3)),
])
def test_each_op_matches_its_tf_definition(name, jax_op, tf_op):
  image = hand_made_image(60, 50)  # a blur radius of 3
  np.testing.assert_allclose(jax_op(image), tf_op(image).numpy(), atol=2e-6, err_msg=name)


def test_hsv_round_trip_and_brightness():
  image = hand_made_image()
  np.testing.assert_allclose(device.hsv_to_rgb(device.rgb_to_hsv(image)), image, atol=2e-6)
  np.testing.assert_allclose(device.adjust_brightness(image, 0.5), image * 0.5)


def test_crop_and_resize_is_tf_crop_then_bicubic_resize():
  image = hand_made_image(40, 50)
  top, left, height, width = 5, 7, 20, 30
  expected = tf.image.resize(image[top:top + height, left:left + width], [16, 16],
                             method="bicubic").numpy().clip(0, 1)
  got = np.asarray(device.crop_and_resize(image, jnp.array([top, left, height, width],
                                                           jnp.float32), 16))
  # Inside the crop they agree; at its edge tf repeats the crop's border pixel where
  # the device version reads the real neighbour, so the cubic's outer taps differ.
  np.testing.assert_allclose(got[2:-2, 2:-2], expected[2:-2, 2:-2], atol=1e-5)
  assert np.abs(got - expected).max() < 0.1


def test_small_images_are_upscaled_to_the_crop_size():
  flat = np.full((5, 7, 3), 0.3, np.float32)
  view = device.random_resized_crop(flat, jax.random.key(0), 32)
  np.testing.assert_allclose(view, np.full((32, 32, 3), 0.3), atol=1e-6)
  # A horizontal ramp stays a ramp: the upscaled columns rise from left to right.
  ramp = np.broadcast_to(np.linspace(0, 1, 7, dtype=np.float32)[None, :, None], (5, 7, 3))
  whole = np.asarray(device.crop_and_resize(ramp, jnp.array([0.0, 0.0, 5.0, 7.0]), 32))
  assert (np.diff(whole[16, :, 0]) >= -1e-6).all() and whole[16, -1, 0] - whole[16, 0, 0] > 0.8


def test_crop_boxes_follow_the_host_distribution():
  keys = jax.random.split(jax.random.key(1), 4000)
  boxes = jax.vmap(lambda k: jnp.stack(device.sample_crop_box(k, 30, 40)))(keys)
  host = tf.data.Dataset.range(4000).map(lambda i: tf.cast(tf.stack(augment.sample_crop_box(
      tf.stack([i, 7]), 30, 40)), tf.float32)).batch(4000).get_single_element().numpy()
  for name, sample in (("device", np.asarray(boxes)), ("host", host)):
    top, left, height, width = sample.T
    assert (top >= 0).all() and (top + height <= 30).all(), name
    assert (left >= 0).all() and (left + width <= 40).all(), name
  area = lambda s: s[:, 2] * s[:, 3] / 1200  # noqa: E731
  log_aspect = lambda s: np.log(s[:, 3] / s[:, 2])  # noqa: E731
  for statistic in (area, log_aspect):
    device_values, host_values = statistic(np.asarray(boxes)), statistic(host)
    assert abs(device_values.mean() - host_values.mean()) < 0.02
    assert abs(device_values.std() - host_values.std()) < 0.02
  # No box of half a 1 x 100 strip's area has an aspect in [3/4, 4/3]: both fall back
  # to the same centred box.
  fallback = device.sample_crop_box(jax.random.key(0), 1, 100, area_range=(0.5, 1.0))
  expected = augment.sample_crop_box(tf.constant([0, 0]), 1, 100, area_range=(0.5, 1.0))
  np.testing.assert_array_equal(np.array(fallback), np.array(expected))
  np.testing.assert_array_equal(np.array(fallback), [0, 49, 1, 1])


# --------------------------------------------------------- distributions ----
def host_views(image, cfg, count, size, compiled=False):
  """`count` full host views (augment.simclr_view) of one image, as numpy; `compiled`:
  in one XLA loop, as the pipeline makes views of small in-memory images, whose random
  numbers differ from uncompiled tf's."""
  view = functools.partial(augment.simclr_view, augment_config=cfg, size=size)
  seeds = tf.stack([tf.range(count, dtype=tf.int64), tf.fill([count], tf.constant(3, tf.int64))], 1)
  if compiled:
    views = tf.function(lambda seeds: tf.map_fn(
        lambda seed: view(tf.constant(image), seed), seeds, fn_output_signature=tf.float32),
                        jit_compile=True)
    return views(seeds).numpy()
  return (tf.data.Dataset.from_tensor_slices(seeds).map(lambda seed: view(tf.constant(image), seed))
          .batch(count).get_single_element().numpy())


def device_views(image, cfg, count, size, crop_on_device):
  keys = jax.random.split(jax.random.key(5), count)
  area = (cfg.crop_area_min, cfg.crop_area_max)
  probs = augment.config_probabilities(cfg)
  if crop_on_device:
    view = functools.partial(device.full_view, augment_config=cfg, size=size, area_range=area,
                             probs=probs)
    return np.asarray(jax.jit(jax.vmap(lambda k: view(jnp.asarray(image), k)))(keys))
  # The device path proper: the host crops and flips (uint8), the device does the colour.
  crops = (tf.data.Dataset.range(count)
           .map(lambda i: tf.cast(tf.round(255 * augment.random_flip(augment.random_resized_crop(
               tf.constant(image), tf.stack([i, 9]), size, area), tf.stack([i, 11]))), tf.uint8))
           .batch(count).get_single_element().numpy())
  colour = functools.partial(device.colour_view, augment_config=cfg, probs=probs)
  return np.asarray(jax.jit(jax.vmap(lambda x, k: colour(device.to_float(x), k)))(crops, keys))


def is_gray(views):
  return np.abs(views - views[..., :1]).max(axis=(1, 2, 3)) < 1e-6


@pytest.mark.parametrize("path", ["device", "resident", "compiled host"])
def test_device_paths_match_the_host_distribution(path):
  image = hand_made_image(40, 36)
  cfg = augment_config(solarize_prob=0.2)
  host = host_views(image, cfg, NUM_VIEWS, 20)
  dev = (host_views(image, cfg, NUM_VIEWS, 20, compiled=True) if path == "compiled host"
         else device_views(image, cfg, NUM_VIEWS, 20, crop_on_device=path == "resident"))
  assert dev.shape == host.shape and dev.dtype == np.float32
  assert dev.min() >= 0 and dev.max() <= 1
  # Per-channel mean and spread of a view, averaged over the views: each gap under
  # 4 standard errors of the host's estimate.
  for statistic in (lambda v: v.mean(axis=(1, 2)), lambda v: v.std(axis=(1, 2))):
    host_stat, dev_stat = statistic(host), statistic(dev)
    standard_error = host_stat.std(axis=0) / np.sqrt(NUM_VIEWS)
    assert (np.abs(host_stat.mean(0) - dev_stat.mean(0)) < 4 * standard_error + 1e-3).all()
  # Grayscale: p = 0.2, so 0.2 of views (jitter never makes a colour image gray).
  for views in (host, dev):
    assert abs(is_gray(views).mean() - 0.2) < 0.04


def test_blur_and_solarize_are_applied_at_their_rates():
  image = hand_made_image(40, 40)
  # No crop, flip or colour: a view differs from the image only if blurred or solarised.
  cfg = augment_config(crop_area_min=1.0, aspect_min=1.0, aspect_max=1.0, flip=False,
                       color_prob=0.0, grayscale_prob=0.0, blur_prob=0.3, solarize_prob=0.0)
  for views in (host_views(image, cfg, NUM_VIEWS, 40), device_views(image, cfg, NUM_VIEWS, 40,
                                                                     crop_on_device=True)):
    changed = np.abs(views - image).max(axis=(1, 2, 3)) > 1e-3
    assert abs(changed.mean() - 0.3) < 0.045
  cfg.blur_prob, cfg.solarize_prob = 0.0, 0.2
  views = device_views(image, cfg, NUM_VIEWS, 40, crop_on_device=True)
  solarised = np.isclose(views, device.solarize(image), atol=1e-5).all(axis=(1, 2, 3))
  assert abs(solarised.mean() - 0.2) < 0.04
  cfg.solarize_prob, cfg.highpass_prob = 0.0, 0.25
  views = device_views(image, cfg, NUM_VIEWS, 40, crop_on_device=True)
  passed = np.isclose(views, device.highpass(image, cfg.highpass_sigma),
                      atol=1e-5).all(axis=(1, 2, 3))
  assert abs(passed.mean() - 0.25) < 0.04
  cfg.highpass_prob, cfg.lighting_prob = 0.0, 0.4
  for views in (host_views(image, cfg, NUM_VIEWS, 40), device_views(image, cfg, NUM_VIEWS, 40,
                                                                     crop_on_device=True)):
    lit = np.abs(views - image).max(axis=(1, 2, 3)) > 1e-3
    assert abs(lit.mean() - 0.4) < 0.045


# ----------------------------------------------------- batches on a mesh ----
def data_config(method="simclr", **overrides):
  cfg = config_lib.base_config(method).data
  cfg.image_size = 12
  if method == "swav":
    cfg.views["global"].count = 2
    cfg.views.local.update(count=3, size=6)
  cfg.augment.update(overrides)
  return cfg


@pytest.mark.parametrize("method", ["byol", "swav"])
def test_device_path_is_the_same_on_one_device_and_on_eight(method):
  cfg = data_config(method)
  groups = pipeline.view_groups(cfg)
  rng = np.random.default_rng(0)
  batch = {"label": np.arange(16, dtype=np.int32), "index": np.arange(16, dtype=np.int32)[::-1]}
  for group in groups:
    shape = (16, group.count) if group.stacked else (16,)
    batch[group.name] = rng.integers(0, 256, shape + (group.size, group.size, 3), np.uint8)
  outputs = []
  for devices in (jax.devices()[:1], jax.devices()):
    mesh = parallel.make_mesh(devices)
    prepare = jax.jit(device.make_prepare(cfg, mesh, seed=3, path="device",
                                          global_batch_size=16))
    outputs.append(jax.device_get(prepare(parallel.global_batch(batch, mesh), 7)))
  one, eight = outputs
  for group in groups:
    assert eight[group.name].shape == batch[group.name].shape
    assert eight[group.name].dtype == np.float32
    # Equal up to float rounding, which the HSV conversion can magnify where two
    # channels nearly tie for the maximum (a handful of pixels, by about 1/100).
    gap = np.abs(eight[group.name] - one[group.name])
    assert (gap > 1e-5).mean() < 1e-3 and gap.max() < 0.02
  np.testing.assert_array_equal(eight["label"], batch["label"])
  np.testing.assert_array_equal(eight["index"], batch["index"])  # passed on untouched
  later = jax.device_get(prepare(parallel.global_batch(batch, mesh), 8))
  assert not np.allclose(later[groups[0].name], eight[groups[0].name])


class ArraySource:
  """A source whose images are known integers: image i is filled with i % 251."""
  name = "arrays"
  num_train = 8 * 12

  def arrays(self, split):
    assert split == "train"
    images = np.broadcast_to((np.arange(self.num_train) % 251).astype(np.uint8)[:, None, None,
                                                                             None],
                             (self.num_train, 10, 10, 3))
    return images, np.arange(self.num_train, dtype=np.int32)


def test_resident_dataset_draws_every_example_once_an_epoch():
  cfg = data_config("simclr", color_prob=0.0, grayscale_prob=0.0, blur_prob=0.0)
  mesh = parallel.make_mesh()
  data = device.resident_dataset(ArraySource(), mesh, global_batch_size=32)
  assert data["images"].sharding.spec == jax.sharding.PartitionSpec("data")
  prepare = jax.jit(device.make_prepare(cfg, mesh, seed=0, path="resident",
                                        global_batch_size=32))
  # 12 examples per device, 4 per device per step: steps 0-2 are epoch 0, 3-5 epoch 1.
  batches = [jax.device_get(prepare(data, step)) for step in range(6)]
  labels = [batch["label"] for batch in batches]
  for batch in batches:  # ArraySource's labels are the examples' indices
    np.testing.assert_array_equal(batch["index"], batch["label"])
  first_epoch, second_epoch = np.concatenate(labels[:3]), np.concatenate(labels[3:])
  np.testing.assert_array_equal(np.sort(first_epoch), np.arange(96))
  np.testing.assert_array_equal(np.sort(second_epoch), np.arange(96))
  assert not np.array_equal(first_epoch, second_epoch)  # reshuffled
  # Each view is its example's image, cropped: a constant image stays that constant.
  batch = prepare(data, 0)
  constant = (np.asarray(batch["label"]) % 251) / 255
  np.testing.assert_allclose(batch["view1"], np.broadcast_to(
      constant[:, None, None, None], batch["view1"].shape), atol=1e-5)


def test_resident_path_refuses_a_batch_larger_than_a_device_shard():
  with pytest.raises(ValueError, match="config.train.batch_size=256"):
    device.resident_dataset(ArraySource(), parallel.make_mesh(), global_batch_size=256)


def test_auto_path_is_host_on_cpu_and_device_side_on_accelerators():
  cfg = ml_collections.ConfigDict({"augment": {"path": "auto"}})
  in_memory = ArraySource()

  class Files:
    def arrays(self, split):
      return None

  assert device.resolve_path(cfg, in_memory, "cpu") == "host"
  assert device.resolve_path(cfg, in_memory, "gpu") == "resident"
  assert device.resolve_path(cfg, Files(), "tpu") == "device"
  cfg.augment.path = "device"
  assert device.resolve_path(cfg, in_memory, "cpu") == "device"
