"""LARS masks, learning-rate scaling and the warm-up + cosine schedule."""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util

from jax_ssl import config as config_lib, methods, optim

from test_train import load_config

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "configs"


def recipe_optim(name):
  return load_config([f"--config={CONFIGS / name}.py"]).optim


@pytest.fixture(scope="module")
def simclr_params():
  c = config_lib.base_config("simclr")
  config_lib.shrink_for_cpu(c)
  model = methods.get("simclr").create_model(c)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((2, 32, 32, 3)),
                                             train=False))
  return jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), shapes["params"])


def _is_bias_or_batchnorm(path):
  module, leaf = path[-2], path[-1]
  return leaf == "bias" or module.startswith("bn") or module.endswith("_bn")


def test_lars_masks_exclude_exactly_biases_and_batchnorm(simclr_params):
  mask = traverse_util.flatten_dict(optim.decay_mask(simclr_params))
  expected = {path: not _is_bias_or_batchnorm(path) for path in mask}
  assert mask == expected
  assert any(expected.values()) and not all(expected.values())
  # The projection head's BN scale and the backbone's BN offset are among the excluded.
  assert any(p[-2] == "bn_0" for p, v in mask.items() if not v)
  assert any(p[-1] == "bias" and p[-2] == "bn1" for p, v in mask.items() if not v)


def test_lars_decays_and_adapts_only_masked_weights(simclr_params):
  c = config_lib.base_config().optim
  c.weight_decay = 0.1
  tx = optim.make_optimizer(c, 1.0)
  zero_grads = jax.tree.map(jnp.zeros_like, simclr_params)
  updates, _ = tx.update(zero_grads, tx.init(simclr_params), simclr_params)
  flat_updates = traverse_util.flatten_dict(updates)
  for path, update in flat_updates.items():
    weight = traverse_util.flatten_dict(simclr_params)[path]
    if _is_bias_or_batchnorm(path):
      np.testing.assert_array_equal(update, 0.0)  # no decay reaches them
    else:
      # Trust ratio: the decay-only step has norm lr * trust_coefficient * ||w||.
      np.testing.assert_allclose(jnp.linalg.norm(update),
                                 c.trust_coefficient * jnp.linalg.norm(weight), rtol=1e-5)


@pytest.mark.parametrize("scaling,expected", [("linear", 0.3 * 4096 / 256),
                                              ("sqrt", 0.3 * 64.0), ("none", 0.3)])
def test_learning_rate_scaling(scaling, expected):
  c = config_lib.base_config().optim
  c.base_lr, c.lr_scaling = 0.3, scaling
  assert optim.scaled_learning_rate(c, 4096) == pytest.approx(expected)


def test_warmup_then_cosine():
  schedule = optim.warmup_cosine(4.8, warmup_steps=10, total_steps=110)
  assert schedule(0) == 0.0
  assert schedule(5) == pytest.approx(2.4)
  assert schedule(10) == pytest.approx(4.8)
  assert schedule(60) == pytest.approx(2.4, rel=1e-5)  # half-way down the cosine
  assert schedule(110) == pytest.approx(0.0, abs=1e-6)


def test_unknown_optimizer_is_named():
  c = config_lib.base_config().optim
  c.name = "adagrad"
  with pytest.raises(ValueError, match="config.optim.name='adagrad'"):
    optim.make_optimizer(c, 0.1)


def _groups_optimizer(params, patterns, treatments, name="sgd", schedule=1.0, **optim_fields):
  c = config_lib.base_config().optim
  c.update({"name": name, "momentum": 0.0, "weight_decay": 0.0, **optim_fields})
  for group, treatment in treatments.items():
    c.groups[group] = optim.group_config(**treatment)
  tx = optim.make_grouped_optimizer(c, schedule, peak_lr=2.0, patterns=patterns,
                                    steps_per_epoch=2, total_steps=10)
  return tx, tx.init(params)


def test_parameter_groups_take_their_own_learning_rates(simclr_params):
  # Barlow Twins' biases and BN parameters at 0.024 of the rate; a constant-rate head.
  patterns = {"biases": r"/(bias|scale)$", "head": r"^projector/dense_out/"}
  labels = traverse_util.flatten_dict(optim.param_labels(patterns)(simclr_params))
  assert labels[("projector", "dense_out", "kernel")] == "head"
  assert labels[("backbone", "bn1", "scale")] == labels[("projector", "bn_0", "bias")] == "biases"
  assert labels[("backbone", "conv1", "kernel")] == "default"
  tx, opt_state = _groups_optimizer(
      simclr_params, patterns, {"biases": dict(lr_multiplier=0.024),
                                "head": dict(constant_lr=True)}, schedule=lambda step: 0.5)
  grads = jax.tree.map(jnp.ones_like, simclr_params)
  updates = traverse_util.flatten_dict(tx.update(grads, opt_state, simclr_params)[0])
  rates = {"default": 0.5, "biases": 0.5 * 0.024, "head": 2.0}  # head: the peak, 2.0
  for path, update in updates.items():
    np.testing.assert_allclose(update, -rates[labels[path]], rtol=1e-6, err_msg=str(path))


def test_a_frozen_group_waits_its_epochs_then_trains(simclr_params):
  tx, opt_state = _groups_optimizer(simclr_params, {"head": r"^projector/"},
                                    {"head": dict(frozen_epochs=1.5)})  # 3 steps of 2 per epoch
  grads = jax.tree.map(jnp.ones_like, simclr_params)
  for step in range(4):
    updates, opt_state = tx.update(grads, opt_state, simclr_params)
    head = jax.tree.leaves(updates["projector"])
    assert all(np.all(np.asarray(u) == (0.0 if step < 3 else -1.0)) for u in head), step
    assert all(np.all(np.asarray(u) == -1.0) for u in jax.tree.leaves(updates["backbone"]))


def test_weight_decay_off_for_a_group_and_on_every_parameter_when_vectors_are_included(
    simclr_params):
  zero = jax.tree.map(jnp.zeros_like, simclr_params)
  tx, opt_state = _groups_optimizer(simclr_params, {"head": r"^projector/"},
                                    {"head": dict(weight_decay=False)}, weight_decay=0.1,
                                    exclude_from_decay=False)
  updates = tx.update(zero, opt_state, simclr_params)[0]
  assert all(np.all(np.asarray(u) == 0.0) for u in jax.tree.leaves(updates["projector"]))
  # Every backbone parameter decays, BN scales (all ones here) included.
  for update in jax.tree.leaves(updates["backbone"]):
    np.testing.assert_allclose(update, -0.1, rtol=1e-6)


def test_resetting_a_group_restores_its_fresh_optimizer_state(simclr_params):
  tx, opt_state = _groups_optimizer(simclr_params, {"head": r"^projector/"}, {"head": {}},
                                    momentum=0.9)
  grads = jax.tree.map(jnp.ones_like, simclr_params)
  _, moved = tx.update(grads, opt_state, simclr_params)
  reset = optim.reset_groups(tx, moved, simclr_params, ["head"])
  fresh = tx.init(simclr_params)
  for kept, expected in ((reset.inner_states["head"], fresh.inner_states["head"]),
                         (reset.inner_states["default"], moved.inner_states["default"])):
    for a, b in zip(jax.tree.leaves(kept), jax.tree.leaves(expected)):
      np.testing.assert_array_equal(a, b)


def test_a_frozen_groups_learning_rate_follows_the_run_once_it_trains(simclr_params):
  # SwAV's prototypes: frozen for 3 steps, then at the run's rate of that step, not at the
  # rate of the step 3 before it.
  rate = lambda step: 0.1 * (step + 1)  # noqa: E731
  tx, opt_state = _groups_optimizer(simclr_params, {"head": r"^projector/"},
                                    {"head": dict(frozen_epochs=1.5)}, schedule=rate)
  grads = jax.tree.map(jnp.ones_like, simclr_params)
  for step in range(7):
    updates, opt_state = tx.update(grads, opt_state, simclr_params)
    expected = 0.0 if step < 3 else -rate(step)
    for head_update in jax.tree.leaves(updates["projector"]):
      np.testing.assert_allclose(head_update, expected, rtol=1e-6, err_msg=str(step))
    for update in jax.tree.leaves(updates["backbone"]):
      np.testing.assert_allclose(update, -rate(step), rtol=1e-6, err_msg=str(step))


def test_weight_decay_on_a_cosine_as_dinos_schedule_and_a_frozen_group_keeps_pace(
    simclr_params):
  # AdamW on zero gradients: each step's update is -lr * wd(step) * w. The head is frozen
  # for 3 steps and then decays at the run's rate, as the backbone does.
  tx, opt_state = _groups_optimizer(
      simclr_params, {"head": r"^projector/"}, {"head": dict(frozen_epochs=1.5)},
      name="adamw", weight_decay=0.04, weight_decay_schedule="cosine", weight_decay_end=0.4)
  # utils.cosine_scheduler(0.04, 0.4, epochs=5, niter_per_ep=2) of facebookresearch/dino
  steps = np.arange(10)
  official = 0.4 + 0.5 * (0.04 - 0.4) * (1 + np.cos(np.pi * steps / 10))
  zero = jax.tree.map(jnp.zeros_like, simclr_params)
  kernel = ("backbone", "conv1", "kernel")
  for step in range(6):
    updates, opt_state = tx.update(zero, opt_state, simclr_params)
    flat = traverse_util.flatten_dict(updates)
    np.testing.assert_allclose(flat[kernel], -official[step], rtol=1e-5)
    np.testing.assert_array_equal(flat[("backbone", "bn1", "scale")], 0.0)  # no decay
    head = flat[("projector", "dense_out", "kernel")]
    np.testing.assert_allclose(head, 0.0 if step < 3 else -official[step], rtol=1e-5)


def clip_gradients(grads, clip):
  """DINO's utils.clip_gradients in NumPy: each parameter's gradient on its own scaled by
  clip / (norm + 1e-6) when that is below 1."""
  clipped = {}
  for name, g in grads.items():
    coef = clip / (np.linalg.norm(g) + 1e-6)
    clipped[name] = g * coef if coef < 1 else g
  return clipped


def test_per_tensor_clipping_clips_each_gradient_on_its_own_as_dino():
  grads = {"large": np.full((3, 4), 2.0, np.float32), "small": np.full((5,), 0.1, np.float32),
           "edge": np.array([3.0, 0.0], np.float32)}
  c = config_lib.base_config().optim
  c.update(name="sgd", momentum=0.0, weight_decay=0.0, grad_clip_per_tensor=3.0)
  tx = optim.make_optimizer(c, 1.0)
  params = jax.tree.map(jnp.zeros_like, grads)
  updates = tx.update(jax.tree.map(jnp.asarray, grads), tx.init(params), params)[0]
  expected = clip_gradients(grads, 3.0)
  for name in grads:
    np.testing.assert_allclose(-np.asarray(updates[name]), expected[name], rtol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(updates["large"]), 3.0, rtol=1e-5)
  np.testing.assert_array_equal(-np.asarray(updates["small"]), grads["small"])


def apex_larc_sgd(params, grads_per_step, rates, weight_decay, trust, momentum, eps=1e-8):
  """NumPy transcription of torch SGD wrapped in apex.parallel.LARC (clip=False): per
  parameter, when both norms are nonzero, the gradient plus weight decay scaled by
  trust * |p| / (|g| + wd * |p| + eps); SGD then runs with its weight decay at 0."""
  params = {k: np.array(v, np.float64) for k, v in params.items()}
  buffers = {}
  for grads, lr in zip(grads_per_step, rates):
    for name, p in params.items():
      g = np.array(grads[name], np.float64)
      p_norm, g_norm = np.linalg.norm(p), np.linalg.norm(g)
      if p_norm != 0 and g_norm != 0:
        g = (g + weight_decay * p) * trust * p_norm / (g_norm + p_norm * weight_decay + eps)
      buffers[name] = g if name not in buffers else momentum * buffers[name] + g
      params[name] = p - lr * buffers[name]
  return params


def test_swavs_larc_decays_and_adapts_every_parameter_as_apex_larc():
  c = recipe_optim("swav_r50")
  c.weight_decay = 0.05  # large enough that decay shows in every step
  rng = np.random.default_rng(0)
  params = {"kernel": rng.normal(size=(3, 3, 4, 8)), "bn_scale": rng.normal(size=8) + 1,
            "bias": np.zeros(8)}  # a zero norm: its first step is the raw gradient
  grads = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in range(3)]
  rates = [0.3, 4.8, 2.0]
  tx = optim.make_optimizer(c, lambda step: jnp.asarray(rates)[step])
  state = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
  opt_state = tx.init(state)
  for g in grads:
    updates, opt_state = tx.update({k: jnp.asarray(v, jnp.float32) for k, v in g.items()},
                                   opt_state, state)
    state = optax.apply_updates(state, updates)
  expected = apex_larc_sgd(params, grads, rates, c.weight_decay, c.trust_coefficient,
                           c.momentum)
  for name in params:
    np.testing.assert_allclose(state[name], expected[name], rtol=2e-5, atol=1e-7,
                               err_msg=name)
  # Plain SGD with momentum, what the other recipes' LARS does to a BN scale, ends elsewhere.
  buffer, plain = 0.0, params["bn_scale"]
  for g, lr in zip(grads, rates):
    buffer = c.momentum * buffer + g["bn_scale"]
    plain = plain - lr * buffer
  assert not np.allclose(state["bn_scale"], plain, rtol=1e-2)


def test_moco_v2_decays_biases_and_batchnorm_as_torch_sgd_does(simclr_params):
  c = recipe_optim("moco_v2_r50")
  tx = optim.make_optimizer(c, 1.0)
  zero = jax.tree.map(jnp.zeros_like, simclr_params)
  updates, _ = tx.update(zero, tx.init(simclr_params), simclr_params)
  for update in jax.tree.leaves(updates):  # every parameter is 1 here: -lr * wd * 1
    np.testing.assert_allclose(update, -c.weight_decay, rtol=1e-6)
