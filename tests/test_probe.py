"""The online probe: trains on stop-gradient features with its own optimizer."""
import types

import jax
import numpy as np

from jax_ssl import config as config_lib, parallel, probe


def test_online_probe_learns_separable_features_and_passes_no_gradient():
  config = config_lib.base_config()
  config.eval.online_probe = True
  run = types.SimpleNamespace(config=config, total_steps=200)
  state = probe.add_online_probe({}, config, num_classes=4, feature_dim=8, total_steps=200,
                                 mesh=parallel.make_mesh())
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 4, 64)
  features = 0.3 * rng.normal(size=(64, 8)).astype(np.float32) + 3.0 * np.eye(8)[labels] + 5.0

  step = jax.jit(lambda p, f, y: probe.online_step(p, f, y, run))
  trained = state["probe"]
  for _ in range(60):
    trained, metrics = step(trained, features, labels)
  assert float(metrics["online_linear_train_top1"]) == 1.0

  def probe_loss(f):
    return step(state["probe"], f, labels)[1]["online_probe_loss"]
  assert not np.any(jax.grad(probe_loss)(features))  # the encoder gets nothing from the probe
