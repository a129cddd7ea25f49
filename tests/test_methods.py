"""Every method through the one training loop: state updates, parameter groups, and a
3-step run of each from its config file."""
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jax_ssl import config as config_lib, metrics, models, optim, parallel, step as step_lib
from jax_ssl import train
from jax_ssl.methods import common, moco

from test_train import load_config

REPO = pathlib.Path(__file__).resolve().parent.parent


def tiny(method, **sections):
  c = config_lib.base_config(method)
  config_lib.shrink_for_cpu(c)
  c.data.image_size = 16
  c.train.batch_size = 16
  for section, overrides in sections.items():
    c[section].update(overrides)
  return c


def build(config, steps_per_epoch=10, total_steps=100, schedule=None):
  """A Run, the train state and the jitted step, as train.py builds them."""
  method, run, tx, schedule = step_lib.make_run(
      config, parallel.make_mesh(), steps_per_epoch=steps_per_epoch, total_steps=total_steps,
      schedule=schedule or (lambda step: 0.1))
  state = step_lib.create_state(run, method, tx)
  return run, method, state, step_lib.make_train_step(run, method, tx, schedule)


def views(config, seed=0):
  rng = np.random.default_rng(seed)
  shape = (config.train.batch_size, config.data.image_size, config.data.image_size, 3)
  batch = {"view1": rng.random(shape, np.float32), "view2": rng.random(shape, np.float32)}
  return jax.device_put(batch, parallel.batch_sharding(parallel.make_mesh()))


def test_moco_queue_keeps_the_newest_keys_in_order():
  state = {"queue": jnp.zeros((8, 3)), "queue_index": jnp.zeros([], jnp.int32)}
  keys = jnp.arange(7 * 2 * 3, dtype=jnp.float32).reshape(7, 2, 3)  # 7 steps of 2 keys
  for batch_keys in keys:
    state = jax.jit(moco.enqueue)(state, batch_keys)
  oldest_first = np.roll(np.asarray(state["queue"]), -int(state["queue_index"]), axis=0)
  np.testing.assert_array_equal(oldest_first, keys.reshape(-1, 3)[-8:])


def test_byol_target_moves_by_the_scheduled_rate_and_gets_no_gradient():
  config = tiny("byol")
  run, _, state, train_step = build(config, total_steps=100)
  batch = views(config)
  before = jax.device_get(state["method_state"]["target"]["params"])
  state, metrics = train_step(state, batch)
  tau = 1 - (1 - 0.996) * (np.cos(0.0) + 1) / 2  # step 0 of 100
  np.testing.assert_allclose(metrics["momentum"], tau, rtol=1e-6)
  online = {k: state["params"][k] for k in common.TARGET_KEYS}
  expected = jax.tree.map(lambda t, o: tau * t + (1 - tau) * o, before, online)
  chex.assert_trees_all_close(state["method_state"]["target"]["params"], expected, atol=1e-6)

  # Every use of the target goes through target_projections: no gradient passes it.
  def projections_sum(target_params):
    target = {**state["method_state"]["target"], "params": target_params}
    return common.target_projections(run, target, batch["view1"])[0].sum()

  grads = jax.jit(jax.grad(projections_sum))(state["method_state"]["target"]["params"])
  assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(grads))


def test_shuffle_bn_normalises_each_device_separately():
  config = tiny("moco_v2")
  run, _, state, _ = build(config)
  images = views(config)["view1"]
  target = state["method_state"]["target"]
  rng = jax.random.key(3)
  shuffled, _ = jax.jit(lambda t, x: common.target_projections(run, t, x, rng))(target, images)
  # By hand: the same permutation, each device's 2 examples normalised alone.
  order = np.asarray(jax.random.permutation(rng, images.shape[0]))
  permuted = np.asarray(images)[order]
  project = jax.jit(lambda x: run.model.apply(target, x, train=True, mutable=["batch_stats"],
                                              method=common.EncoderWithHeads.project)[0])
  by_device = np.concatenate([project(chunk) for chunk in np.split(permuted, 8)])
  np.testing.assert_allclose(np.asarray(shuffled), by_device[np.argsort(order)], atol=1e-5)
  global_bn, _ = jax.jit(lambda t, x: common.target_projections(run, t, x))(target, images)
  assert np.abs(np.asarray(global_bn) - np.asarray(shuffled)).max() > 1e-3


def multicrop_batch(config, seed=0):
  rng = np.random.default_rng(seed)
  b, s, views = config.train.batch_size, config.data.image_size, config.data.views
  local = views.local.size
  batch = {"global": rng.random((b, views["global"].count, s, s, 3), np.float32),
           "local": rng.random((b, views.local.count, local, local, 3), np.float32)}
  return jax.device_put(batch, parallel.batch_sharding(parallel.make_mesh()))


def test_swav_prototypes_stay_unit_norm_and_do_not_move_while_frozen():
  # A queue of 2 batches that starts filling at once: in use from step 3.
  config = tiny("swav", swav=dict(queue_size=32, queue_start_epochs=0))
  assert config.optim.groups.prototypes.frozen_epochs == 1  # SwAV's default, from its module
  _, _, state, train_step = build(config, steps_per_epoch=2)
  batch = multicrop_batch(config)
  kernels = [np.asarray(state["params"]["prototypes"]["kernel"])]
  for step in range(1, 4):
    state, metrics = train_step(state, batch)
    kernels.append(np.asarray(state["params"]["prototypes"]["kernel"]))
    assert np.isfinite(metrics["loss"]) and 0 < metrics["code_entropy"] <= np.log(30)
    assert metrics["queue_in_use"] == (step == 3)
  # The queue holds unit projections, newest first.
  queue = np.asarray(state["method_state"]["queue"])
  np.testing.assert_allclose(np.linalg.norm(queue, axis=-1), 1.0, rtol=1e-5)
  for kernel in kernels:
    np.testing.assert_allclose(np.linalg.norm(kernel, axis=0), 1.0, rtol=1e-5)
  # Steps 1 and 2 are the first epoch: only re-normalisation's rounding moves them.
  np.testing.assert_allclose(kernels[1], kernels[0], atol=1e-6)
  np.testing.assert_allclose(kernels[2], kernels[0], atol=1e-6)
  assert np.abs(kernels[3] - kernels[2]).max() > 1e-6  # then they train


# CMC runs with three views (L, a and b) and every pair of them contrasted.
RECIPE_OVERRIDES = {"cmc_r50": ("--config.cmc.views=('L', 'a', 'b')",
                                "--config.cmc.objective=full_graph")}


# Each augmentation path runs end to end: BYOL's asymmetric pair with its colour ops on
# the devices, and SwAV's multi-crop with the dataset (CIFAR-10's fixed-size images)
# resident there, crops and all. Methods that run end to end elsewhere are not repeated:
# DeepCluster v1 and v2 through resumed runs in test_deepcluster.py, and MoCo v3 here on its
# ViT recipe (test_config.py validates every recipe, moco_v3_r50's among them).
@pytest.mark.parametrize("recipe, path", [
    ("moco_v2_r50", "host"), ("moco_v3_vit_small", "host"),
    ("byol_r50", "device"), ("vicreg_r50", "host"),
    ("swav_r50", "resident"), ("simsiam_r50", "host"), ("barlow_twins_r50", "device"),
    ("npid_r50", "host"), ("pirl_r50", "device"),
    ("rotnet_r50", "device"), ("jigsaw_r50", "host"), ("relative_position_r50", "resident"),
    ("cmc_r50", "resident"), ("cpc_r50", "host"),
    ("colorization_r50", "host"), ("inpainting_r50", "device"),
    ("mae_vit_base", "device"), ("dino_r50", "device")])
def test_three_steps_through_the_config_on_mock_data(recipe, path, tmp_path):
  source = "tfds:cifar10" if path == "resident" else "tfds:imagenet2012"
  config = load_config([f"--config={REPO / 'configs' / recipe}.py:tiny",
                        *RECIPE_OVERRIDES.get(recipe, ()),
                        f"--config.data.augment.path={path}", f"--config.data.source={source}",
                        "--config.train.batch_size=16", "--config.train.max_steps=3",
                        "--config.data.image_size=16", "--config.eval.batch_size=32",
                        "--config.eval.linear_epochs=1", "--config.eval.baseline=False",
                        "--config.train.checkpoint_every_steps=3",
                        "--config.model.depth=2"])  # ViTs: 2 blocks compile in seconds
  with tfds.testing.mock_data(num_examples=32):
    final = train.train_and_evaluate(config, str(tmp_path))
  records = metrics.read_metrics(tmp_path)
  assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
  assert all(np.isfinite(r["loss"]) and 0 < r["embedding_std"] <= 1 for r in records
             if "loss" in r)
  assert 0 <= final["linear_top1"] <= 1 and 0 <= final["knn_top1"] <= 1
  assert (tmp_path / "checkpoints" / "3").is_dir()


def test_vicreg_logs_its_three_terms_and_its_loss_is_their_weighted_sum():
  config = tiny("vicreg")
  _, _, state, train_step = build(config)
  _, metrics = train_step(state, views(config))
  v = config.vicreg
  expected = (v.invariance * metrics["invariance"] + v.variance * metrics["variance"]
              + v.covariance * metrics["covariance"])
  np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-6)
  assert 0 < metrics["variance"] <= 1 and metrics["covariance"] > 0


def test_simsiam_predictor_keeps_its_learning_rate_while_the_rest_decays():
  # A schedule already at zero: only the predictor, at the constant peak rate, moves.
  config = tiny("simsiam")
  config.optim.update(name="sgd", weight_decay=0.0, momentum=0.0)
  _, _, state, train_step = build(config, schedule=lambda step: 0.0)
  before = jax.device_get(state["params"])
  state, _ = train_step(state, views(config))
  after = jax.device_get(state["params"])
  moved = {name: any(np.any(a != b) for a, b in zip(jax.tree.leaves(after[name]),
                                                    jax.tree.leaves(before[name])))
           for name in after}
  assert moved == {"backbone": False, "projector": False, "predictor": True}


def test_simclr_official_scale_doubles_the_loss_and_the_steps_lars_leaves_unadapted():
  """loss_scale=2 is the official objective (both directions' means summed): twice the
  loss, so twice the step of every bias and BN parameter, which LARS does not adapt,
  while the adapted weights' steps keep their size."""
  deltas, losses = [], []
  for scale in (1.0, 2.0):
    config = tiny("simclr", simclr=dict(loss_scale=scale),
                  optim=dict(name="lars", weight_decay=0.0))
    _, _, state, train_step = build(config)
    before = jax.device_get(state["params"])
    state, metrics = train_step(state, views(config))
    deltas.append(jax.tree.map(lambda a, b: np.asarray(a, np.float64) - b,
                               jax.device_get(state["params"]), before))
    losses.append(float(metrics["loss"]))
  np.testing.assert_allclose(losses[1], 2 * losses[0], rtol=1e-6)
  adapted = optim.decay_mask(deltas[0])
  for paper, official, is_adapted in zip(jax.tree.leaves(deltas[0]), jax.tree.leaves(deltas[1]),
                                         jax.tree.leaves(adapted)):
    np.testing.assert_allclose(official, paper if is_adapted else 2 * paper, rtol=2e-3,
                               atol=1e-9)


@pytest.mark.parametrize("recipe, zero_init", [
    ("simclr_r50", True), ("moco_v3_r50", True), ("byol_r50", True), ("simsiam_r50", True),
    ("barlow_twins_r50", True), ("vicreg_r50", True), ("moco_v2_r50", False),
    ("swav_r50", False)])
def test_recipes_zero_init_each_residual_blocks_last_bn_as_their_official_code(recipe,
                                                                                zero_init):
  config = load_config([f"--config={REPO / 'configs' / recipe}.py"])
  assert config.model.zero_init_last_bn is zero_init
  if recipe != "simclr_r50":
    return
  backbone = models.create_backbone(config.model)
  params = jax.jit(lambda: backbone.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)),
                                         train=False))()["params"]
  last = [block["bn3"]["scale"] for name, block in params.items() if "bn3" in block]
  assert len(last) == 16  # ResNet-50's bottleneck blocks
  assert all(np.all(np.asarray(scale) == 0) for scale in last)
