"""DINO: its loss against a transcription of the official DINOLoss and across 8 devices,
the head's weight-normalised last layer, the teacher's schedules, the centre's checkpoint."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jax_ssl import checkpoint, config as config_lib, losses, optim, parallel
from jax_ssl import step as step_lib
from jax_ssl.methods import common, dino
from jax_ssl.models.heads import DINOHead

from test_methods import build, tiny

STUDENT_TEMP, TEACHER_TEMP = 0.1, 0.04


def official_dino_loss(student, teacher, center, student_temp, teacher_temp, momentum=0.9):
  """DINOLoss.forward and update_center of facebookresearch/dino (main_dino.py), written
  out as loops in float64 over crops laid out as there: [V * n, K] student rows and
  [G * n, K] teacher rows, crop after crop."""
  student, teacher = np.float64(student), np.float64(teacher)
  num_crops, num_global = student.shape[1], teacher.shape[1]
  student_chunks = [student[:, v] / student_temp for v in range(num_crops)]
  teacher_chunks = []
  for i in range(num_global):
    shifted = (teacher[:, i] - center) / teacher_temp
    exp = np.exp(shifted - shifted.max(axis=1, keepdims=True))
    teacher_chunks.append(exp / exp.sum(axis=1, keepdims=True))
  total, terms = 0.0, 0
  for i, q in enumerate(teacher_chunks):
    for v, s in enumerate(student_chunks):
      if v == i:
        continue
      log_softmax = s - s.max(axis=1, keepdims=True)
      log_softmax -= np.log(np.exp(log_softmax).sum(axis=1, keepdims=True))
      total += np.mean(np.sum(-q * log_softmax, axis=1))
      terms += 1
  all_teacher_rows = np.concatenate([teacher[:, i] for i in range(num_global)])
  new_center = center * momentum + all_teacher_rows.mean(axis=0) * (1 - momentum)
  entropy = np.mean([np.mean(-np.sum(q * np.log(q), axis=1)) for q in teacher_chunks])
  return total / terms, new_center, entropy


def _logits(seed, n=16, crops=5, k=12):
  """Student logits for `crops` crops and the teacher's for the first 2, related as a
  trained pair's are, with shards of different means so a per-device centre would differ."""
  ks, kt = jax.random.split(jax.random.key(seed))
  teacher = 2.0 * jax.random.normal(kt, (n, 2, k))
  teacher += jnp.repeat(jnp.arange(8.0), n // 8)[:, None, None] * 0.3
  student = jnp.concatenate([teacher, teacher[:, :1].repeat(crops - 2, axis=1)], axis=1)
  return student + jax.random.normal(ks, (n, crops, k)), teacher


@pytest.mark.parametrize("crops", [2, 5])
def test_loss_and_centre_match_the_official_dino_loss(crops):
  student, teacher = _logits(0, crops=crops)
  center = 0.1 * jnp.arange(12.0)
  result = losses.dino_loss(student, teacher, center, student_temp=STUDENT_TEMP,
                            teacher_temp=TEACHER_TEMP)
  expected = official_dino_loss(student, teacher, np.asarray(center), STUDENT_TEMP,
                                TEACHER_TEMP)
  np.testing.assert_allclose(result.loss, expected[0], rtol=1e-5)
  np.testing.assert_allclose(result.center, expected[1], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(result.teacher_entropy, expected[2], rtol=1e-4, atol=1e-6)


def _loss_and_centre(student, teacher, center, axis_name=None):
  result = losses.dino_loss(student, teacher, center, student_temp=STUDENT_TEMP,
                            teacher_temp=TEACHER_TEMP, axis_name=axis_name)
  return result.loss, (result.center, result.teacher_entropy)


def test_sharded_on_8_devices_equals_unsharded_and_the_teacher_gets_no_gradient():
  student, teacher = _logits(1, n=32)
  center = 0.05 * jnp.arange(12.0)
  mesh = parallel.make_mesh()
  assert mesh.size == 8
  sharded = jax.shard_map(functools.partial(_loss_and_centre, axis_name=parallel.DATA_AXIS),
                          mesh=mesh, in_specs=(P(parallel.DATA_AXIS),) * 2 + (P(),),
                          out_specs=P())
  grad = lambda fn: jax.value_and_grad(fn, argnums=(0, 1), has_aux=True)
  on_8 = jax.jit(grad(sharded))(student, teacher, center)
  on_1 = grad(_loss_and_centre)(student, teacher, center)
  chex.assert_trees_all_close(on_8, on_1, atol=1e-5, rtol=1e-5)
  (_, (new_center, _)), (student_grad, teacher_grad) = on_1
  # The centre is the global batch's mean, not one device's.
  global_mean = np.asarray(teacher).reshape(-1, 12).mean(axis=0)
  np.testing.assert_allclose(new_center, 0.9 * center + 0.1 * global_mean, rtol=1e-5)
  assert np.abs(np.asarray(teacher)[:4].reshape(-1, 12).mean(0) - global_mean).max() > 0.1
  assert np.all(np.asarray(teacher_grad) == 0)
  assert np.all(np.abs(np.asarray(student_grad)).sum(axis=-1) > 0)


def test_teacher_temperature_warms_up_as_the_official_linspace():
  c = tiny("dino", dino=dict(warmup_teacher_temp=0.04, teacher_temp=0.07,
                             warmup_teacher_temp_epochs=4))
  official = np.concatenate([np.linspace(0.04, 0.07, 4), np.full(6, 0.07)])
  ours = [float(dino.teacher_temperature(c, epoch)) for epoch in range(10)]
  np.testing.assert_allclose(ours, official, rtol=1e-6)
  c.dino.warmup_teacher_temp_epochs = 0  # main_dino.py's default: teacher_temp throughout
  np.testing.assert_allclose(float(dino.teacher_temperature(c, 0)), 0.07, rtol=1e-6)


@pytest.fixture(scope="module")
def trained():
  """Three steps of a tiny DINO with 2-step epochs: the states after each, and the run."""
  config = tiny("dino")
  run, _, state, train_step = build(config, steps_per_epoch=2, total_steps=10)
  batch = multicrop_batch(config)
  states, step_metrics = [jax.device_get(state)], []
  for _ in range(3):
    state, metrics = train_step(state, batch)
    states.append(jax.device_get(state))
    step_metrics.append(jax.device_get(metrics))
  return run, states, step_metrics, state, train_step, batch


def multicrop_batch(config, seed=0):
  rng = np.random.default_rng(seed)
  b, s, local = config.train.batch_size, config.data.image_size, config.data.views.local
  batch = {name: rng.random((b, s, s, 3), np.float32) for name in dino.GLOBAL_GROUPS}
  batch["local"] = rng.random((b, local.count, local.size, local.size, 3), np.float32)
  return jax.device_put(batch, parallel.batch_sharding(parallel.make_mesh()))


def test_last_layer_has_unit_columns_and_stays_frozen_through_the_first_epoch(trained):
  run, states, step_metrics, _, _, batch = trained
  assert run.config.optim.groups.last_layer.frozen_epochs == 1  # DINO's freeze_last_layer
  kernels = [s["params"]["projector"]["last_layer"]["kernel"] for s in states]
  np.testing.assert_array_equal(kernels[1], kernels[0])
  np.testing.assert_array_equal(kernels[2], kernels[0])
  assert np.abs(kernels[3] - kernels[2]).max() > 1e-6  # the second epoch trains it
  backbone = states[0]["params"]["backbone"]
  assert any(np.abs(a - b).max() > 0 for a, b in zip(
      jax.tree.leaves(states[1]["params"]["backbone"]), jax.tree.leaves(backbone)))
  # Unit l2-normalised inputs against unit-norm columns: every logit is a cosine.
  variables = {"params": states[3]["params"], "batch_stats": states[3]["batch_stats"]}
  logits = run.model.apply(variables, batch["global1"], train=False)[1]
  assert 0.5 < np.abs(np.asarray(logits)).max() <= 1 + 1e-5
  for metrics in step_metrics:
    assert 0 < metrics["teacher_entropy"] <= np.log(run.config.dino.out_dim) + 1e-4
    np.testing.assert_allclose(metrics["teacher_student_kl"],
                               metrics["loss"] - metrics["teacher_entropy"], rtol=1e-6)
    assert metrics["teacher_student_kl"] >= -1e-5


def test_a_trained_last_layer_norm_scales_each_unit_output():
  # norm_last_layer=False: PyTorch's weight_g, one norm per output, 2-D as there.
  head = DINOHead(hidden_dims=(8,), bottleneck_dim=4, output_dim=6, norm_last_layer=False)
  x = jax.random.normal(jax.random.key(0), (3, 5))
  variables = head.init(jax.random.key(1), x, train=False)
  last = variables["params"]["last_layer"]
  assert last["scale"].shape == (1, 6) and np.all(last["scale"] == 1)
  scale = jnp.arange(1.0, 7.0)[None]
  scaled = {"params": {**variables["params"], "last_layer": {**last, "scale": scale}}}
  unit = head.apply(variables, x, train=False)
  np.testing.assert_allclose(head.apply(scaled, x, train=False), unit * scale, rtol=1e-6)
  fixed = DINOHead(hidden_dims=(8,), bottleneck_dim=4, output_dim=6)
  assert "scale" not in fixed.init(jax.random.key(1), x, train=False)["params"]["last_layer"]


def test_teacher_follows_the_student_at_the_cosine_rate_and_the_centre_moves(trained):
  _, states, step_metrics, _, _, _ = trained
  rate = optim.ema_momentum(1, 10, 0.996, "cosine")
  np.testing.assert_allclose(step_metrics[1]["momentum"], rate, rtol=1e-6)
  online = {k: states[2]["params"][k] for k in ("backbone", "projector")}
  expected = jax.tree.map(lambda t, o: rate * t + (1 - rate) * o,
                          states[1]["method_state"]["target"]["params"], online)
  chex.assert_trees_all_close(states[2]["method_state"]["target"]["params"], expected,
                              atol=1e-6)
  centers = [s["method_state"]["center"] for s in states]
  assert centers[0].shape == (64,) and np.all(centers[0] == 0)
  assert all(np.abs(b - a).max() > 0 for a, b in zip(centers, centers[1:]))


def test_the_centre_is_checkpointed_and_a_resumed_run_continues_with_it(trained, tmp_path):
  run, states, _, state, train_step, batch = trained
  manager = checkpoint.make_manager(str(tmp_path), run.config.train)
  checkpoint.save(manager, 3, state)
  manager.wait_until_finished()
  restored = checkpoint.restore_latest(manager, checkpoint.abstract_like(state))
  np.testing.assert_array_equal(restored["method_state"]["center"],
                                states[3]["method_state"]["center"])
  continued, _ = train_step(state, batch)
  resumed, _ = train_step(restored, batch)
  np.testing.assert_array_equal(resumed["method_state"]["center"],
                                continued["method_state"]["center"])
  chex.assert_trees_all_equal(jax.device_get(resumed["params"]),
                              jax.device_get(continued["params"]))


@pytest.mark.parametrize("section, field, value", [
    ("dino", "teacher_temp", 0.0), ("dino", "student_temp", -0.1),
    ("dino", "warmup_teacher_temp_epochs", -1), ("dino", "momentum_teacher", 1.5),
    ("dino", "out_dim", 0), ("dino", "center_momentum", -0.1), ("optim", "weight_decay_schedule", "linear"),
    ("optim", "grad_clip_per_tensor", -3.0)])
def test_bad_values_get_one_line_errors_naming_the_field(section, field, value):
  c = tiny("dino")
  c[section][field] = value
  with pytest.raises(ValueError, match=rf"^config\.{section}\.{field}=") as error:
    config_lib.validate(c, num_devices=1)
  assert "\n" not in str(error.value)


def test_views_other_than_dinos_multi_crop_are_refused():
  c = tiny("dino")
  del c.data.views["local"]
  with pytest.raises(ValueError, match=r"^config\.data\.views="):
    config_lib.validate(c, num_devices=1)
  c = tiny("dino")
  c.data.views.global2.size = 12
  with pytest.raises(ValueError, match=r"^config\.data\.views\.global2\.size="):
    config_lib.validate(c, num_devices=1)


def test_stochastic_depth_drops_paths_of_the_student_only():
  """A ViT student with drop_path_rate draws its paths from the step's rng; the teacher,
  as DINO's official one, has no stochastic depth."""
  config = tiny("dino", model=dict(arch="vit_tiny", depth=2, patch_size=4, image_size=16,
                                   drop_path_rate=0.5))
  config.data.views.local.size = 8
  method, run, tx, _ = step_lib.make_run(config, parallel.make_mesh(), steps_per_epoch=2,
                                         total_steps=10, schedule=lambda step: 0.0)
  state = step_lib.create_state(run, method, tx)
  batch = multicrop_batch(config)
  loss = jax.jit(lambda rng: dino.loss(state["params"], state, batch, rng, run).loss)
  first, again, other = loss(jax.random.key(1)), loss(jax.random.key(1)), loss(jax.random.key(2))
  assert float(first) == float(again) != float(other)
  teacher = jax.jit(lambda: common.target_projections(
      run, state["method_state"]["target"], batch["global1"])[0])
  np.testing.assert_array_equal(teacher(), teacher())
  # The same teacher projection the deterministic forward gives (train=False differs in BN only).
  no_drop = config.copy_and_resolve_references()
  no_drop.model.drop_path_rate = 0.0
  _, run_no_drop, _, _ = step_lib.make_run(no_drop, parallel.make_mesh(), steps_per_epoch=2,
                                           total_steps=10, schedule=lambda step: 0.0)
  expected = jax.jit(lambda: common.target_projections(
      run_no_drop, state["method_state"]["target"], batch["global1"])[0])()
  np.testing.assert_allclose(teacher(), expected, rtol=1e-6, atol=1e-6)
