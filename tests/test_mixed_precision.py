"""bfloat16 activations through the real training step: same losses, float32 state and loss math.

Each method runs two steps of its ImageNet recipe shrunk for CPU (`configs/<recipe>.py:tiny`
at 16 pixels, batch 16, one device) twice from the same initial state and the same batches:
once with config.model.dtype = 'float32', once with 'bfloat16'. The losses of the two runs
must agree to a relative tolerance of 2e-2. Measured on CPU (jax 0.10.2), the relative gap of
the two steps' losses was 4.6e-3 and 2.1e-3 for SimCLR and 1.1e-4 and 1.0e-3 for BYOL with
these batches, and at most 6.5e-3 (SimCLR) and 1.5e-3 (BYOL) over four different batches,
so the tolerance leaves a factor of three.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import distributed_steps
from jax_ssl import optim, parallel, step as step_lib

LOSS_RTOL = 2e-2
RECIPES = {"simclr": "configs/simclr_r50.py:tiny", "byol": "configs/byol_r50.py:tiny"}
STATE_KEYS = ("params", "opt_state", "batch_stats", "method_state")


def batches(steps, batch_size=16, size=16):
  rng = np.random.default_rng(0)
  views = rng.uniform(size=(steps, 2, batch_size, size, size, 3)).astype(np.float32)
  return [{"view1": v[0], "view2": v[1], "index": np.arange(batch_size, dtype=np.int32)}
          for v in views]


def build(recipe, dtype):
  config = distributed_steps.recipe_config(recipe)
  config.model.dtype = dtype
  schedule = optim.warmup_cosine(
      optim.scaled_learning_rate(config.optim, config.train.batch_size), 1, 10)
  method, run, tx, schedule = step_lib.make_run(
      config, parallel.make_mesh(jax.devices()[:1]), steps_per_epoch=5, total_steps=10,
      schedule=schedule)
  return method, run, step_lib.create_state(run, method, tx), step_lib.make_train_step(
      run, method, tx, schedule)


def equations(jaxpr):
  """Every equation of a jaxpr and of the jaxprs nested in it (shard_map, custom_vjp, ...)."""
  for eqn in jaxpr.eqns:
    yield eqn
    for value in eqn.params.values():
      for inner in value if isinstance(value, (tuple, list)) else (value,):
        inner = getattr(inner, "jaxpr", inner)
        if hasattr(inner, "eqns"):
          yield from equations(inner)


def out_dtypes(jaxpr, primitive):
  return [v.aval.dtype for e in equations(jaxpr) if e.primitive.name == primitive
          for v in e.outvars]


@pytest.mark.parametrize("name", list(RECIPES))
def test_bfloat16_step_matches_float32_and_keeps_float32_state(name):
  data = batches(2)
  results = {}
  for dtype in ("float32", "bfloat16"):
    method, run, state, train_step = build(RECIPES[name], dtype)
    initial = jax.device_get(state["params"])
    losses = []
    for batch in data:
      state, metrics = train_step(state, parallel.global_batch(batch, run.mesh))
      assert metrics["loss"].dtype == jnp.float32
      losses.append(float(metrics["loss"]))
    results[dtype] = initial, np.array(losses), jax.device_get(state)
    for key in STATE_KEYS:
      for path, leaf in jax.tree_util.tree_leaves_with_path(state[key]):
        assert (leaf.dtype == jnp.float32 if jnp.issubdtype(leaf.dtype, jnp.floating)
                else jnp.issubdtype(leaf.dtype, jnp.integer)), (
            f"{dtype} run: state[{key!r}]{jax.tree_util.keystr(path)} is {leaf.dtype}")

  (init32, loss32, state32), (init16, loss16, _) = results["float32"], results["bfloat16"]
  jax.tree.map(np.testing.assert_array_equal, init16, init32)  # the same initial state
  assert np.all(np.isfinite(loss16))
  np.testing.assert_allclose(loss16, loss32, rtol=LOSS_RTOL)
  assert not np.array_equal(loss16, loss32)  # bfloat16 did change the arithmetic
  if name == "byol":
    assert "target" in state32["method_state"]

  # Where the precision goes: convolutions in bfloat16, the loss in float32.
  batch = parallel.global_batch(data[0], run.mesh)
  jaxpr = jax.make_jaxpr(lambda p: method.loss(p, state, batch, jax.random.key(0), run).loss)(
      state["params"]).jaxpr
  convs = out_dtypes(jaxpr, "conv_general_dilated")
  assert convs and all(d == jnp.bfloat16 for d in convs)
  assert jaxpr.outvars[0].aval.dtype == jnp.float32
  if name == "simclr":
    # The similarity logits: [n, d] x [n, d]^T products, one per view and term.
    n = data[0]["view1"].shape[0]
    logits = [v.aval.dtype for e in equations(jaxpr) if e.primitive.name == "dot_general"
              for v in e.outvars if v.aval.shape == (n, n)]
    assert len(logits) >= 4 and all(d == jnp.float32 for d in logits)
