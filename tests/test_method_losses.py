"""MoCo, BYOL and SwAV losses and Sinkhorn: against NumPy transcriptions, and sharded on 8
devices against unsharded on the concatenated batch."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jax_ssl import losses, optim, parallel, sinkhorn

SPEC = P(parallel.DATA_AXIS)


def _unit(x):
  x = np.asarray(x, np.float64)
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def moco_reference(q, k, tau, queue=None):
  """MoCo (He et al. 2020) eq. 1: -log exp(q.k+/t) / sum over {k+} and the negatives.

  With a queue the negatives are its keys (v1/v2); without, query i's
  candidates are all keys of the batch, its own being the positive (v3).
  """
  q, k = _unit(q), _unit(k)
  total = 0.0
  for i in range(len(q)):
    candidates = k if queue is None else np.concatenate([k[i:i + 1], _unit(queue)])
    logits = candidates @ q[i] / tau
    positive = q[i] @ k[i] / tau
    total += np.log(np.sum(np.exp(logits))) - positive
  return total / len(q)


def byol_reference(p, z):
  """BYOL (Grill et al. 2020) eq. 2: || p/|p| - z/|z| ||^2, averaged over the batch."""
  return np.mean(np.sum((_unit(p) - _unit(z)) ** 2, axis=1))


def sinkhorn_reference(scores, eps, iters):
  """SwAV Algorithm 1 (Caron et al. 2020, appendix A.1), written as alternating scalings."""
  q = np.exp(np.asarray(scores, np.float64) / eps).T  # K x B
  num_prototypes, num_rows = q.shape
  q /= q.sum()
  for _ in range(iters):
    q /= q.sum(axis=1, keepdims=True) * num_prototypes
    q /= q.sum(axis=0, keepdims=True) * num_rows
  return (q * num_rows).T


def _pair(seed, n=32, d=16):
  ka, kb = jax.random.split(jax.random.key(seed))
  a = jax.random.normal(ka, (n, d))
  return a, a + 0.7 * jax.random.normal(kb, (n, d))


def _sharded(fn, mesh, num_args, out_spec=None):
  out_spec = P() if out_spec is None else out_spec
  return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=(SPEC,) * num_args, out_specs=out_spec))


@pytest.mark.parametrize("tau", [0.2, 1.0])
@pytest.mark.parametrize("with_queue", [False, True])
def test_moco_infonce_matches_reference(tau, with_queue):
  q, k = _pair(0)
  queue = losses.l2_normalize(jax.random.normal(jax.random.key(9), (48, 16))) if with_queue \
      else None
  expected = moco_reference(q, k, tau, None if queue is None else np.asarray(queue))
  np.testing.assert_allclose(losses.moco_infonce(q, k, temperature=tau, queue=queue), expected,
                             rtol=1e-5)


@pytest.mark.parametrize("with_queue", [False, True])
def test_moco_infonce_sharded_equals_unsharded(with_queue):
  mesh = parallel.make_mesh()
  q, k = _pair(1)  # 4 examples per device
  queue = losses.l2_normalize(jax.random.normal(jax.random.key(2), (64, 16))) if with_queue \
      else None
  single = lambda q, k: losses.moco_infonce(q, k, temperature=0.2, queue=queue)
  local = functools.partial(losses.moco_infonce, temperature=0.2, queue=queue,
                            axis_name=parallel.DATA_AXIS)
  sharded = jax.shard_map(local, mesh=mesh, in_specs=(SPEC, SPEC), out_specs=P())
  chex.assert_trees_all_close(jax.jit(sharded)(q, k), single(q, k), atol=1e-5)
  grads = jax.jit(jax.grad(sharded, argnums=(0, 1)))(q, k)
  chex.assert_trees_all_close(grads, jax.grad(single, argnums=(0, 1))(q, k), atol=1e-6)
  # Without a queue, each key is a negative for every other device's queries.
  assert np.all(np.abs(np.asarray(grads[1])).sum(axis=1) > 0)


def test_byol_regression_matches_reference_and_sharded():
  p, z = _pair(3)
  np.testing.assert_allclose(losses.byol_regression(p, z), byol_reference(p, z), rtol=1e-5)
  mesh = parallel.make_mesh()
  sharded = _sharded(functools.partial(losses.byol_regression, axis_name=parallel.DATA_AXIS),
                     mesh, 2)
  chex.assert_trees_all_close(sharded(p, z), losses.byol_regression(p, z), atol=1e-6)
  grad_sharded = jax.jit(jax.grad(jax.shard_map(
      functools.partial(losses.byol_regression, axis_name=parallel.DATA_AXIS), mesh=mesh,
      in_specs=(SPEC, SPEC), out_specs=P())))(p, z)
  chex.assert_trees_all_close(grad_sharded, jax.grad(losses.byol_regression)(p, z), atol=1e-6)
  np.testing.assert_allclose(losses.byol_regression(p, 2 * p), 0.0, atol=1e-6)


@pytest.mark.parametrize("eps,iters", [(0.05, 3), (0.1, 1), (0.5, 10)])
def test_sinkhorn_matches_reference(eps, iters):
  scores = np.asarray(losses.l2_normalize(jax.random.normal(jax.random.key(4), (32, 12))))
  codes = jax.jit(functools.partial(sinkhorn.sinkhorn, epsilon=eps, num_iters=iters))(scores)
  np.testing.assert_allclose(codes, sinkhorn_reference(scores, eps, iters), rtol=1e-4,
                             atol=1e-7)
  np.testing.assert_allclose(np.sum(codes, axis=1), 1.0, rtol=1e-5)


def test_sinkhorn_prototype_masses_approach_uniform():
  scores = losses.l2_normalize(jax.random.normal(jax.random.key(5), (64, 16)) + 2.0)
  gaps = []
  for iters in (1, 3, 10, 50):
    codes = sinkhorn.sinkhorn(scores, epsilon=0.05, num_iters=iters)
    mass = np.asarray(jnp.mean(codes, axis=0))  # each prototype's share
    gaps.append(np.max(np.abs(mass - 1 / 16)))
  assert all(b <= a + 1e-7 for a, b in zip(gaps, gaps[1:])), gaps
  assert gaps[-1] < 1e-3 < gaps[0], gaps


def test_sinkhorn_sharded_equals_unsharded_and_has_no_gradient():
  mesh = parallel.make_mesh()
  scores = losses.l2_normalize(jax.random.normal(jax.random.key(6), (32, 10)))
  local = functools.partial(sinkhorn.sinkhorn, axis_name=parallel.DATA_AXIS)
  sharded = _sharded(local, mesh, 1, out_spec=SPEC)
  chex.assert_trees_all_close(sharded(scores), sinkhorn.sinkhorn(scores), atol=1e-6)
  grad = jax.grad(lambda s: jnp.sum(sinkhorn.sinkhorn(s) * s))(scores)
  # Only the explicit factor s gets a gradient: the codes are targets.
  chex.assert_trees_all_close(grad, sinkhorn.sinkhorn(scores), atol=1e-6)


def test_swapped_prediction_matches_reference():
  scores = np.asarray(jax.random.normal(jax.random.key(7), (8, 5)))
  codes = np.asarray(sinkhorn.sinkhorn(scores))
  log_p = scores / 0.1 - np.log(np.sum(np.exp(scores / 0.1), axis=1, keepdims=True))
  np.testing.assert_allclose(losses.swapped_prediction(scores, codes, temperature=0.1),
                             -np.mean(np.sum(codes * log_p, axis=1)), rtol=1e-5)


def test_ema_momentum_schedules():
  for k, expected in [(0, 0.996), (500, 0.998), (1000, 1.0)]:
    np.testing.assert_allclose(optim.ema_momentum(k, 1000, 0.996), expected, atol=1e-7)
  assert optim.ema_momentum(123, 1000, 0.999, "constant") == np.float32(0.999)
  target = {"w": jnp.zeros(3)}
  moved = optim.ema_update(target, {"w": jnp.ones(3)}, 0.99)
  np.testing.assert_allclose(moved["w"], 0.01, rtol=1e-6)


def test_embedding_std_detects_collapse():
  spread = losses.embedding_std(jax.random.normal(jax.random.key(8), (4096, 64)))
  np.testing.assert_allclose(spread, 1 / np.sqrt(64), rtol=0.02)
  assert losses.embedding_std(jnp.ones((16, 64))) < 1e-6
