"""Losses against NumPy transcriptions of the papers and against their 8-device forms."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jax_ssl import losses, parallel


def simclr_algorithm1(z_a, z_b, tau):
  """SimCLR (Chen et al. 2020), Algorithm 1, written out literally in float64."""
  z = np.concatenate([z_a, z_b]).astype(np.float64)
  z /= np.linalg.norm(z, axis=1, keepdims=True)
  n = len(z_a)
  sim = z @ z.T

  def ell(i, j):
    others = [np.exp(sim[i, k] / tau) for k in range(2 * n) if k != i]
    return -np.log(np.exp(sim[i, j] / tau) / np.sum(others))

  total = sum(ell(k, k + n) + ell(k + n, k) for k in range(n))
  return total / (2 * n)


def _embeddings(seed, n=16, d=8):
  ka, kb = jax.random.split(jax.random.key(seed))
  z_a = jax.random.normal(ka, (n, d))
  # Correlated views, as a trained encoder gives: positives are not random.
  z_b = z_a + 0.5 * jax.random.normal(kb, (n, d))
  return z_a, z_b


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_nt_xent_matches_algorithm_1(tau):
  z_a, z_b = _embeddings(0)
  expected = simclr_algorithm1(np.asarray(z_a), np.asarray(z_b), tau)
  np.testing.assert_allclose(losses.nt_xent(z_a, z_b, temperature=tau), expected, rtol=1e-5)


def test_nt_xent_is_scale_invariant_and_symmetric():
  z_a, z_b = _embeddings(1)
  loss = losses.nt_xent(z_a, z_b, temperature=0.2)
  np.testing.assert_allclose(losses.nt_xent(3 * z_a, 0.1 * z_b, temperature=0.2), loss, rtol=1e-5)
  np.testing.assert_allclose(losses.nt_xent(z_b, z_a, temperature=0.2), loss, rtol=1e-5)


def test_nt_xent_perfect_alignment_beats_random():
  z_a, z_b = _embeddings(2, n=32, d=64)
  aligned = losses.nt_xent(z_a, z_a, temperature=0.1)
  shuffled = losses.nt_xent(z_a, jnp.roll(z_b, 1, axis=0), temperature=0.1)
  assert aligned < 0.1 < np.log(63) - 1 < shuffled


def _sharded_nt_xent(mesh, tau):
  loss = functools.partial(losses.nt_xent, temperature=tau, axis_name="data")
  return jax.shard_map(loss, mesh=mesh, in_specs=(P("data"), P("data")), out_specs=P())


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_nt_xent_sharded_equals_unsharded(tau):
  mesh = parallel.make_mesh()
  assert mesh.size == 8
  z_a, z_b = _embeddings(3, n=32, d=16)  # 4 examples per device
  single = functools.partial(losses.nt_xent, temperature=tau)
  sharded = jax.jit(_sharded_nt_xent(mesh, tau))

  chex.assert_trees_all_close(sharded(z_a, z_b), single(z_a, z_b), atol=1e-5)
  grads_single = jax.grad(single, argnums=(0, 1))(z_a, z_b)
  grads_sharded = jax.jit(jax.grad(_sharded_nt_xent(mesh, tau), argnums=(0, 1)))(z_a, z_b)
  chex.assert_trees_all_close(grads_sharded, grads_single, atol=1e-5)
  # The gradient must reach every row, including other devices' negatives.
  assert np.all(np.abs(np.asarray(grads_sharded[0])).sum(axis=1) > 0)


def test_nt_xent_gradient_matches_finite_differences():
  z_a, z_b = _embeddings(4, n=6, d=5)
  f = lambda a: losses.nt_xent(a, z_b, temperature=0.5)
  grad = np.asarray(jax.grad(f)(z_a), np.float64)
  a64 = np.asarray(z_a, np.float64)
  eps = 1e-3
  for idx in [(0, 0), (2, 3), (5, 4)]:
    plus, minus = a64.copy(), a64.copy()
    plus[idx] += eps
    minus[idx] -= eps
    numeric = (simclr_algorithm1(plus, np.asarray(z_b), 0.5) - simclr_algorithm1(minus, np.asarray(z_b), 0.5)) / (2 * eps)
    np.testing.assert_allclose(grad[idx], numeric, rtol=1e-3, atol=1e-5)
