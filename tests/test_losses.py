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


# SimSiam, Barlow Twins and VICReg. References are transcribed in float64; the
# sharded tests split the batch over the 8 devices of parallel.make_mesh().

SHAPES = [(16, 8), (32, 4), (8, 16)]  # including more dimensions than examples


def _views(seed, n, d, scale=1.0):
  """Two correlated views whose stds straddle VICReg's hinge at 1."""
  z_a, z_b = _embeddings(seed, n, d)
  spread = jnp.linspace(0.3, 2.0, d)
  return scale * spread * z_a, scale * spread * z_b


def _shifted_shards(seed, n=32, d=6):
  """Views whose 8 shards have different means and scales, so statistics taken per
  device would differ from the global batch's."""
  z_a, z_b = _views(seed, n, d, scale=0.5)
  shard = jnp.repeat(jnp.arange(8.0), n // 8)[:, None]
  return z_a * (1 + 0.2 * shard) + 0.25 * shard, z_b * (1 + 0.1 * shard) - 0.2 * shard


def _shard_mapped(fn, num_args):
  """`fn` on the 8-device mesh, each argument split along the batch axis."""
  mesh = parallel.make_mesh()
  assert mesh.size == 8
  local = functools.partial(fn, axis_name=parallel.DATA_AXIS)
  return jax.shard_map(local, mesh=mesh, in_specs=(P(parallel.DATA_AXIS),) * num_args,
                       out_specs=P())


def _sharded_value_and_grad(loss, num_args):
  return jax.jit(jax.value_and_grad(_shard_mapped(loss, num_args),
                                    argnums=tuple(range(num_args))))


def _assert_sharded_equals_unsharded(loss, args, atol=1e-5):
  sharded = _sharded_value_and_grad(loss, len(args))(*args)
  single = jax.value_and_grad(loss, argnums=tuple(range(len(args))))(*args)
  chex.assert_trees_all_close(sharded, single, atol=atol, rtol=1e-5)
  return single


def _cosine(u, v):
  return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def simsiam_reference(p_a, p_b, z_a, z_b):
  """SimSiam (Chen & He 2021) eq. 4: D(p1, z2)/2 + D(p2, z1)/2, D the negative cosine."""
  p_a, p_b, z_a, z_b = (np.asarray(x, np.float64) for x in (p_a, p_b, z_a, z_b))
  n = len(p_a)
  d_ab = -sum(_cosine(p_a[i], z_b[i]) for i in range(n)) / n
  d_ba = -sum(_cosine(p_b[i], z_a[i]) for i in range(n)) / n
  return d_ab / 2 + d_ba / 2


@pytest.mark.parametrize("n,d", SHAPES)
def test_simsiam_loss_matches_reference(n, d):
  p_a, p_b = _views(10, n, d)
  z_a, z_b = _views(11, n, d, scale=3.0)
  np.testing.assert_allclose(losses.simsiam_loss(p_a, p_b, z_a, z_b),
                             simsiam_reference(p_a, p_b, z_a, z_b), rtol=1e-5, atol=1e-6)


def test_simsiam_loss_stops_target_gradients_and_is_minus_one_when_aligned():
  p_a, p_b = _views(12, 16, 8)
  z_a, z_b = _views(13, 16, 8)
  grads = jax.grad(losses.simsiam_loss, argnums=(0, 1, 2, 3))(p_a, p_b, z_a, z_b)
  assert np.all(np.asarray(grads[2]) == 0) and np.all(np.asarray(grads[3]) == 0)
  assert np.all(np.abs(np.asarray(grads[0])).sum(axis=1) > 0)
  # Each prediction equal to (a positive multiple of) the target it is compared with.
  np.testing.assert_allclose(losses.simsiam_loss(z_b, z_a, z_a, z_b), -1.0, rtol=1e-6)
  np.testing.assert_allclose(losses.simsiam_loss(3 * z_b, 0.5 * z_a, z_a, z_b), -1.0,
                             rtol=1e-6)
  # A norm below 1e-8 counts as 1e-8, as in torch's nn.CosineSimilarity: cos = 0.1 here.
  tiny, unit = jnp.array([[1e-9, 0.0]]), jnp.array([[1.0, 0.0]])
  np.testing.assert_allclose(losses.simsiam_loss(tiny, unit, unit, unit), -0.55, rtol=1e-6)


def test_simsiam_loss_sharded_equals_unsharded():
  p_a, p_b = _views(14, 32, 8)
  z_a, z_b = _shifted_shards(15, d=8)
  _, grads = _assert_sharded_equals_unsharded(losses.simsiam_loss, (p_a, p_b, z_a, z_b))
  assert np.all(np.asarray(grads[2]) == 0) and np.all(np.asarray(grads[3]) == 0)


def _sum_off_diagonal_squares(m):
  return sum(m[i, j] ** 2 for i in range(len(m)) for j in range(len(m)) if i != j)


def barlow_twins_reference(z_a, z_b, lambd, eps=1e-5):
  """Barlow Twins (Zbontar et al. 2021) eqs. 1-2, each view batch-normalised without
  affine parameters as the official main.py does (biased variance, eps 1e-5)."""
  def batch_norm(z):
    z = np.asarray(z, np.float64)
    return (z - z.mean(axis=0)) / np.sqrt(z.var(axis=0) + eps)

  a, b = batch_norm(z_a), batch_norm(z_b)
  n, d = a.shape
  c = np.array([[sum(a[k, i] * b[k, j] for k in range(n)) / n for j in range(d)]
                for i in range(d)])
  loss = sum((1 - c[i, i]) ** 2 for i in range(d)) + lambd * _sum_off_diagonal_squares(c)
  return c, loss


@pytest.mark.parametrize("n,d", SHAPES)
def test_barlow_twins_matches_reference(n, d):
  z_a, z_b = _views(20, n, d, scale=2.0)
  c, loss = barlow_twins_reference(z_a, z_b, lambd=0.0051)
  np.testing.assert_allclose(losses.cross_correlation(z_a, z_b), c, atol=1e-5)
  np.testing.assert_allclose(losses.barlow_twins_loss(z_a, z_b), loss, rtol=1e-5)
  # A larger lambd, so that an error in the off-diagonal part cannot hide.
  _, loss = barlow_twins_reference(z_a, z_b, lambd=0.5)
  np.testing.assert_allclose(losses.barlow_twins_loss(z_a, z_b, lambd=0.5), loss, rtol=1e-5)


def _decorrelated_views(n=16, d=6):
  """Columns 1..d of the n x n Sylvester-Hadamard matrix: entries +-1, mean 0,
  biased variance 1 and pairwise orthogonal, so C = I / (1 + eps)."""
  rows, cols = np.meshgrid(np.arange(n), np.arange(1, d + 1), indexing="ij")
  parity = np.vectorize(lambda k: bin(k).count("1") % 2)(rows & cols)
  return jnp.asarray(1.0 - 2.0 * parity, jnp.float32)


def test_barlow_twins_is_zero_for_decorrelated_standardized_identical_views():
  z = _decorrelated_views()
  np.testing.assert_allclose(losses.cross_correlation(z, z), np.eye(6), atol=2e-5)
  np.testing.assert_allclose(losses.barlow_twins_loss(z, z), 0.0, atol=1e-8)
  # Scale and shift per dimension are normalised away.
  shifted = 3.0 * z + jnp.arange(6.0)
  np.testing.assert_allclose(losses.barlow_twins_loss(shifted, z), 0.0, atol=1e-8)
  # Sharded, each device holds 2 of the 16 rows, which alone are far from decorrelated:
  # only the global batch's statistics give C = I.
  loss, _ = _sharded_value_and_grad(losses.barlow_twins_loss, 2)(z, z)
  np.testing.assert_allclose(loss, 0.0, atol=1e-8)


def test_barlow_twins_sharded_equals_unsharded_with_global_statistics():
  z_a, z_b = _shifted_shards(21)
  loss, grads = _assert_sharded_equals_unsharded(losses.barlow_twins_loss, (z_a, z_b))
  np.testing.assert_allclose(loss, barlow_twins_reference(z_a, z_b, 0.0051)[1], rtol=1e-5)
  assert all(np.all(np.abs(np.asarray(g)).sum(axis=1) > 0) for g in grads)
  # Statistics per device would have given a different loss.
  per_device = np.mean([barlow_twins_reference(a, b, 0.0051)[1]
                        for a, b in zip(np.split(z_a, 8), np.split(z_b, 8))])
  assert abs(per_device - loss) > 0.1 * loss
  chex.assert_trees_all_close(jax.jit(_shard_mapped(losses.cross_correlation, 2))(z_a, z_b),
                              losses.cross_correlation(z_a, z_b), atol=1e-5)


def vicreg_reference(z_a, z_b, eps=1e-4):
  """VICReg (Bardes et al. 2022) section 2, as main_vicreg.py computes its terms: MSE
  invariance; the two views' hinge on the std (unbiased variance) averaged;
  their off-diagonal covariance squares (divided by N - 1) over d, summed."""
  z_a, z_b = np.asarray(z_a, np.float64), np.asarray(z_b, np.float64)
  d = z_a.shape[1]

  def variance(z):
    std = np.sqrt(np.var(z, axis=0, ddof=1) + eps)
    return np.mean(np.maximum(0.0, 1.0 - std))

  def covariance(z):
    return _sum_off_diagonal_squares(np.cov(z, rowvar=False)) / d

  return dict(invariance=np.mean((z_a - z_b) ** 2),
              variance=(variance(z_a) + variance(z_b)) / 2,
              covariance=covariance(z_a) + covariance(z_b))


@pytest.mark.parametrize("n,d", SHAPES)
def test_vicreg_terms_match_reference(n, d):
  z_a, z_b = _views(30, n, d)
  terms = losses.vicreg_terms(z_a, z_b)
  expected = vicreg_reference(z_a, z_b)
  assert 0 < expected["variance"]  # some dimensions below the hinge, some above
  for name in ("invariance", "variance", "covariance"):
    np.testing.assert_allclose(terms[name], expected[name], rtol=1e-5, atol=1e-7, err_msg=name)
  weighted = 25 * expected["invariance"] + 25 * expected["variance"] + expected["covariance"]
  np.testing.assert_allclose(losses.vicreg_loss(z_a, z_b), weighted, rtol=1e-5)
  np.testing.assert_allclose(
      losses.vicreg_loss(z_a, z_b, invariance=1.0, variance=2.0, covariance=3.0),
      expected["invariance"] + 2 * expected["variance"] + 3 * expected["covariance"],
      rtol=1e-5)


def test_vicreg_sharded_equals_unsharded_with_global_statistics():
  z_a, z_b = _shifted_shards(31)
  loss, grads = _assert_sharded_equals_unsharded(losses.vicreg_loss, (z_a, z_b))
  expected = vicreg_reference(z_a, z_b)
  np.testing.assert_allclose(
      loss, 25 * expected["invariance"] + 25 * expected["variance"] + expected["covariance"],
      rtol=1e-5)
  assert all(np.all(np.abs(np.asarray(g)).sum(axis=1) > 0) for g in grads)
  per_device = np.mean([vicreg_reference(a, b)["covariance"]
                        for a, b in zip(np.split(z_a, 8), np.split(z_b, 8))])
  assert abs(per_device - expected["covariance"]) > 0.1 * expected["covariance"]
  terms = jax.jit(_shard_mapped(losses.vicreg_terms, 2))(z_a, z_b)
  chex.assert_trees_all_close(terms, losses.vicreg_terms(z_a, z_b), rtol=1e-5)
