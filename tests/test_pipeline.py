"""The host pipeline's modes, its compiled stages, and its handling of files that fail to
decode."""
import functools

import numpy as np
import pytest
import tensorflow as tf

from jax_ssl import config as config_lib
from jax_ssl.data import augment, make_source, pipeline
from test_data import indexed_source


def folder_config(root, method="simclr", **augment):
  cfg = config_lib.base_config(method).data
  cfg.source = f"folder:{root}"
  cfg.image_size = 16
  cfg.shuffle_buffer = 64
  cfg.augment.update(augment)
  return cfg


def write_folder(root, count, corrupt=()):
  """`count` 24 x 20 JPEG and PNG training images, some of them cut short."""
  rng = np.random.default_rng(0)
  for split in ("train", "test"):
    (root / split / "a").mkdir(parents=True)
  for i in range(count):
    image = rng.integers(0, 256, (24, 20, 3), np.uint8)
    encoded = (tf.io.encode_png(image) if i % 2 else tf.io.encode_jpeg(image)).numpy()
    if i in corrupt:
      encoded = encoded[:len(encoded) // 3]  # the header survives, the pixels do not
    (root / "train" / "a" / f"{i}.{'png' if i % 2 else 'jpg'}").write_bytes(encoded)
  (root / "test" / "a" / "0.png").write_bytes(tf.io.encode_png(image).numpy())
  return root


def test_undecodable_files_are_skipped_and_counted(tmp_path):
  cfg = folder_config(write_folder(tmp_path, 24, corrupt=(3, 10, 17)))
  batches = pipeline.pretrain_batches(cfg, make_source(cfg), local_batch_size=7, seed=0)
  seen = [next(batches) for _ in range(6)]  # 42 examples: two passes over the 21 good ones
  assert all(b["view1"].shape == (7, 16, 16, 3) and "position" not in b for b in seen)
  # Two epochs read: each skipped the 3 bad files, except what the 6th batch had not
  # reached yet.
  assert batches.skipped in (5, 6)


def test_device_mode_sends_the_host_modes_crops_as_uint8(tmp_path):
  """With the colour ops off, the host mode's views are the device mode's crops."""
  cfg = folder_config(write_folder(tmp_path, 8), color_prob=0.0, grayscale_prob=0.0,
                      blur_prob=0.0, solarize_prob=0.0)
  source = make_source(cfg)
  host = next(pipeline.pretrain_batches(cfg, source, local_batch_size=8, seed=1))
  device = next(pipeline.pretrain_batches(cfg, source, local_batch_size=8, seed=1,
                                          colour_on_host=False))
  for name in ("view1", "view2"):
    assert device[name].dtype == np.uint8
    np.testing.assert_allclose(device[name] / 255, host[name], atol=1e-6)
  np.testing.assert_array_equal(device["label"], host["label"])


def test_view_groups_are_the_methods_and_take_the_shared_values_they_leave_unset():
  cfg = config_lib.base_config("byol").data
  first, second = pipeline.view_groups(cfg)
  assert (first.blur_prob, second.blur_prob) == (1.0, 0.1)
  assert (first.solarize_prob, second.solarize_prob) == (0.0, 0.2)
  assert first.color_prob == cfg.augment.color_prob and first.size == cfg.image_size
  cfg.augment.grayscale_prob = 0.5
  cfg.image_size = 64
  assert {(g.grayscale_prob, g.size) for g in pipeline.view_groups(cfg)} == {(0.5, 64)}
  cfg = config_lib.base_config("swav").data
  global_crops, local_crops = pipeline.view_groups(cfg)
  assert (global_crops.count, global_crops.size, local_crops.count, local_crops.size) == (
      2, 224, 6, 96)
  assert local_crops.area_range == (0.05, 0.14) and local_crops.stacked


def test_pipeline_views_are_simclr_views_of_the_same_seeds(tmp_path):
  """Decoding once per image, resizing from uint8 and flipping after the resize are
  only faster: every view is `augment.simclr_view` of its seed, from arrays and from
  PNG bytes alike (JPEG windows differ at their edges, see sources.decode_window)."""
  cfg = folder_config(tmp_path, "byol")
  cfg.views.view1.solarize_prob = 0.3
  cfg.image_size = 24
  image = np.random.default_rng(3).integers(0, 256, (30, 41, 3), np.uint8)
  make_views = pipeline._views_of(cfg)  # pylint: disable=protected-access
  for example in ({"image": tf.constant(image)}, {"encoded": tf.io.encode_png(image)}):
    for seed in range(6):
      seed = tf.constant([seed, 7], tf.int64)
      got = make_views(example, seed)
      view_seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
      for group, view_seed in zip(pipeline.view_groups(cfg), view_seeds):
        name = group.name
        expected = augment.simclr_view(pipeline.to_float(image), view_seed, cfg.augment, 24,
                                       blur_prob=group.blur_prob,
                                       solarize_prob=group.solarize_prob)
        # Float rounding only: resizing uint8 levels, then scaling, rounds differently.
        np.testing.assert_allclose(got[name], expected, atol=1e-5)


@pytest.mark.parametrize("method", ["byol", "swav"])
def test_small_in_memory_images_become_views_in_one_compiled_loop(method):
  """The batch XLA makes holds, for each example, the views `_views_of` makes of it from
  the seed of its position, compiled alike: the loop mixes no examples or seeds."""
  cfg = folder_config("unused", method, solarize_prob=0.3)
  cfg.image_size = 10
  if method == "swav":
    cfg.views["global"].count = 2
    cfg.views.local.update(count=2, size=6)
  source = indexed_source(20, (14, 12))
  images = next(iter(source.dataset("train").batch(20)))["image"].numpy()
  batch = next(iter(pipeline.pretrain_dataset(cfg, source, local_batch_size=6, seed=2)))
  key = pipeline._key(2, 0, pipeline._AUGMENT_STREAM)  # pylint: disable=protected-access
  make_views = pipeline._views_of(cfg)  # pylint: disable=protected-access

  @functools.partial(tf.function, jit_compile=True)
  def views_of(image, position):
    return make_views({"image": image},
                      tf.random.experimental.stateless_fold_in(key, position))

  names = [group.name for group in pipeline.view_groups(cfg)]
  for i, (label, position) in enumerate(zip(batch["label"], batch["position"])):
    expected = views_of(tf.constant(images[label]), position)
    for name in names:
      np.testing.assert_allclose(batch[name][i], expected[name], atol=1e-6)
  assert not np.allclose(batch[names[0]][0], batch[names[0]][1], atol=0.05)


def test_colour_stage_colours_each_view_from_its_own_seeds(tmp_path):
  """Decoded images are cropped one by one, as uint8, and coloured a batch at a time; a
  view's colour depends on its seeds alone, not on its place in the batch."""
  cfg = folder_config(tmp_path, "byol", color_prob=1.0)
  cfg.views.view1.solarize_prob = 0.3
  image = np.random.default_rng(3).integers(0, 256, (30, 41, 3), np.uint8)
  make_views = pipeline._views_of(cfg, "batched")  # pylint: disable=protected-access
  made = [make_views({"encoded": tf.io.encode_png(image)}, tf.constant([seed, 7], tf.int64))
          for seed in range(4)]
  batch = {name: tf.stack([views[name] for views in made]) for name in made[0]}
  coloured = pipeline._colour_stage(cfg)(batch)  # pylint: disable=protected-access
  assert set(coloured) == {"view1", "view2"}
  for group in pipeline.view_groups(cfg):
    name = group.name
    colour_one = tf.function(
        lambda view, seeds, g=group: augment.colour_view(view, seeds, cfg.augment, g),
        jit_compile=True)
    assert batch[name].dtype == tf.uint8  # the crops the device path sends, until coloured
    for i in range(4):
      crop = pipeline.to_float(batch[name][i])
      expected = colour_one(crop, batch[name + "_colour_seeds"][i])
      np.testing.assert_allclose(coloured[name][i], expected, atol=1e-6)
      assert np.abs(coloured[name][i] - crop).max() > 0.01  # jitter always applied
