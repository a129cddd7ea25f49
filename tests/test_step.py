"""The update step: with config.train.skip_nonfinite_steps a NaN step changes nothing."""
import jax
import numpy as np

import distributed_steps
from jax_ssl import parallel, step as step_lib


def test_a_non_finite_step_is_skipped_and_counted():
  config = distributed_steps.recipe_config("configs/simclr_tiny.py")
  config.train.skip_nonfinite_steps = True
  method, run, tx, schedule = step_lib.make_run(
      config, parallel.make_mesh(jax.devices()[:1]), steps_per_epoch=5, total_steps=10,
      schedule=lambda step: 0.1)
  train_step = step_lib.make_train_step(run, method, tx, schedule)
  rng = np.random.default_rng(0)
  views = rng.uniform(size=(2, 16, 16, 16, 3)).astype(np.float32)
  batch = {"view1": views[0], "view2": views[1], "label": np.zeros(16, np.int32),
           "index": np.arange(16, dtype=np.int32)}
  poisoned = {**batch, "view1": np.full_like(views[0], np.nan)}

  state = step_lib.create_state(run, method, tx)
  before = jax.device_get(state)
  state, skipped = train_step(state, parallel.global_batch(poisoned, run.mesh))
  after = jax.device_get(state)
  skipped = jax.device_get(skipped)
  assert not np.isfinite(skipped["grad_norm"]) and skipped["skipped_steps"] == 1
  assert np.isfinite(skipped["param_norm"])  # of the parameters kept
  for key in ("params", "batch_stats", "opt_state", "method_state"):
    jax.tree.map(np.testing.assert_array_equal, after[key], before[key])
  assert after["step"] == 1 and not np.array_equal(after["rng"], before["rng"])

  state, taken = train_step(state, parallel.global_batch(batch, run.mesh))
  assert np.isfinite(taken["grad_norm"]) and taken["skipped_steps"] == 1
  assert not np.array_equal(jax.device_get(state["params"]["backbone"]["conv1"]["kernel"]),
                            before["params"]["backbone"]["conv1"]["kernel"])
