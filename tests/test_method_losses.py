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


# ---------------------------------------------- NPID and PIRL, memory bank ----
def npid_softmax_reference(v, index, bank, tau, num_examples):
  """NPID (Wu et al. 2018) eq. 2: -log exp(m_i.v/t) / sum_j exp(m_j.v/t), j over the N
  examples' rows of the bank, averaged over the batch."""
  v, bank = _unit(v), np.asarray(bank, np.float64)[:num_examples]
  total = 0.0
  for i in range(len(v)):
    scores = [np.exp(bank[j] @ v[i] / tau) for j in range(num_examples)]
    total -= np.log(scores[index[i]] / np.sum(scores))
  return total / len(v)


def npid_normalizer_reference(v, positives, negatives, tau, num_examples):
  """NPID section 3.2: Z ~ N x the mean of exp(m.v/t) over the batch's data and noise
  pairs (the official code's first-iteration estimate)."""
  v = _unit(v)
  pairs = [np.exp(positives[i] @ v[i] / tau) for i in range(len(v))]
  pairs += [np.exp(negatives[k] @ v[i] / tau) for i in range(len(v))
            for k in range(len(negatives))]
  return num_examples * np.mean(pairs)


def npid_nce_reference(v, positives, negatives, tau, normalizer, num_examples):
  """NPID eqs. 3-6: P(i|v) = exp(m_i.v/t)/Z, h = P / (P + K/N); per example
  -log h(i, v) - sum_k log(1 - h(k, v)) over its K noise rows, averaged."""
  v = _unit(v)
  noise = len(negatives) / num_examples  # K P_n, P_n = 1/N
  total = 0.0
  for i in range(len(v)):
    p = np.exp(positives[i] @ v[i] / tau) / normalizer
    total -= np.log(p / (p + noise))
    for k in range(len(negatives)):
      p_k = np.exp(negatives[k] @ v[i] / tau) / normalizer
      total -= np.log(1 - p_k / (p_k + noise))
  return total / len(v)


def _bank_case(seed, n=32, d=8, rows=64, num_examples=60, num_negatives=12):
  """Features, their bank rows (near them, as after training) and noise rows."""
  keys = jax.random.split(jax.random.key(seed), 4)
  bank = losses.l2_normalize(jax.random.normal(keys[0], (rows, d)))
  index = jax.random.permutation(keys[1], num_examples)[:n].astype(jnp.int32)
  v = bank[index] + 0.6 * jax.random.normal(keys[2], (n, d))
  negatives = bank[jax.random.randint(keys[3], (num_negatives,), 0, num_examples)]
  return v, index, bank, negatives


@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_npid_softmax_matches_eq_2_and_skips_padding_rows(tau):
  v, index, bank, _ = _bank_case(20)
  expected = npid_softmax_reference(v, np.asarray(index), bank, tau, 60)
  got = losses.instance_softmax(v, index, bank, temperature=tau, num_examples=60)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_npid_nce_and_its_normalizer_match_eqs_3_to_6(tau):
  v, index, bank, negatives = _bank_case(21)
  positives = bank[index]
  args = (np.asarray(v), np.asarray(positives, np.float64), np.asarray(negatives, np.float64),
          tau)
  normalizer = losses.nce_normalizer(v, positives, negatives, temperature=tau,
                                     num_examples=60)
  np.testing.assert_allclose(normalizer, npid_normalizer_reference(*args, 60), rtol=1e-5)
  got = losses.instance_nce(v, positives, negatives, temperature=tau, normalizer=normalizer,
                            num_examples=60)
  np.testing.assert_allclose(got, npid_nce_reference(*args, float(normalizer), 60), rtol=1e-5)


def test_pirl_loss_matches_eq_5():
  v, index, bank, negatives = _bank_case(22)
  g = v + 0.3 * jax.random.normal(jax.random.key(23), v.shape)
  positives = bank[index]
  rows = (np.asarray(positives, np.float64), np.asarray(negatives, np.float64))
  got = losses.pirl_loss(v, g, positives, negatives, temperature=0.07,
                         normalizer=70.0, num_examples=60, weight=0.3)
  expected = (0.3 * npid_nce_reference(np.asarray(g), *rows, 0.07, 70.0, 60)
              + 0.7 * npid_nce_reference(np.asarray(v), *rows, 0.07, 70.0, 60))
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  # Its InfoNCE form: each term MoCo's eq. 1 with the noise rows as the queue.
  got = losses.pirl_loss(v, g, positives, negatives, temperature=0.07, weight=0.3)
  expected = (0.3 * moco_reference(g, positives, 0.07, np.asarray(negatives))
              + 0.7 * moco_reference(v, positives, 0.07, np.asarray(negatives)))
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def _bank_sharded_equals_unsharded(fn, sharded_args, shared_args, argnums):
  """`fn` of the batch (and a bank) split over 8 devices and of rows whole on each, against
  `fn` on one device: values and gradients."""
  mesh = parallel.make_mesh()
  local = functools.partial(fn, axis_name=parallel.DATA_AXIS)
  specs = (SPEC,) * len(sharded_args) + (P(),) * len(shared_args)
  sharded = jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=P())
  args = sharded_args + shared_args
  got = jax.jit(jax.value_and_grad(sharded, argnums=argnums))(*args)
  chex.assert_trees_all_close(got, jax.value_and_grad(fn, argnums=argnums)(*args), atol=1e-5,
                              rtol=1e-5)


def test_npid_softmax_on_a_bank_split_over_8_devices_equals_one_device():
  v, index, bank, _ = _bank_case(24)  # 8 rows of the bank per device, the last 4 padding
  fn = functools.partial(losses.instance_softmax, temperature=0.1, num_examples=60)
  _bank_sharded_equals_unsharded(fn, (v, index, bank), (), argnums=0)


def test_npid_nce_and_pirl_sharded_equal_unsharded():
  v, index, bank, negatives = _bank_case(25)
  positives = bank[index]
  nce = functools.partial(losses.instance_nce, temperature=0.1, normalizer=80.0,
                          num_examples=60)
  _bank_sharded_equals_unsharded(nce, (v, positives), (negatives,), argnums=0)
  normalizer = functools.partial(losses.nce_normalizer, temperature=0.1, num_examples=60)
  _bank_sharded_equals_unsharded(normalizer, (v, positives), (negatives,), argnums=0)
  pirl = functools.partial(losses.pirl_loss, temperature=0.1, normalizer=50.0,
                           num_examples=60)
  _bank_sharded_equals_unsharded(pirl, (v, 2 * v, positives), (negatives,), argnums=(0, 1))
  pirl_infonce = functools.partial(losses.pirl_loss, temperature=0.1)
  _bank_sharded_equals_unsharded(pirl_infonce, (v, 2 * v, positives), (negatives,),
                                 argnums=(0, 1))


# ------------------------------------------------------------- CMC and CPC ----
def cmc_reference(features, positives, negatives, tau, pairs, normalizers=None,
                  num_examples=None):
  """CMC (Tian et al. 2020) eqs. 2-3 summed over `pairs` (eqs. 5-6): for each pair,
  anchors of view i against view j's bank rows and anchors of view j against view i's,
  each by the K + 1-way softmax (the official NCESoftmaxLoss) or, with Z, by NCE."""
  def contrast(a, b):
    rows = np.asarray(positives[b], np.float64), np.asarray(negatives[b], np.float64)
    if normalizers is None:
      return moco_reference(features[a], rows[0], tau, rows[1])
    return npid_nce_reference(np.asarray(features[a]), *rows, tau, normalizers[a][b],
                              num_examples)
  return sum(contrast(i, j) + contrast(j, i) for i, j in pairs)


def _cmc_case(seed, views=3, n=16, d=8, num_negatives=12):
  """Features of `views` views, each view's bank rows near them, and noise rows."""
  keys = jax.random.split(jax.random.key(seed), 3 * views)
  features, positives, negatives = [], [], []
  for v in range(views):
    features.append(jax.random.normal(keys[3 * v], (n, d)))
    positives.append(losses.l2_normalize(features[-1] + jax.random.normal(keys[3 * v + 1],
                                                                          (n, d))))
    negatives.append(losses.l2_normalize(jax.random.normal(keys[3 * v + 2],
                                                           (num_negatives, d))))
  return tuple(features), tuple(positives), tuple(negatives)


# The pairs of eqs. 5 (core view) and 6 (full graph), written out for 3 and 4 views.
CMC_PAIRS = {3: {"core": [(0, 1), (0, 2)], "full_graph": [(0, 1), (0, 2), (1, 2)]},
             4: {"core": [(0, 1), (0, 2), (0, 3)],
                 "full_graph": [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]}}


@pytest.mark.parametrize("nce", [False, True])
@pytest.mark.parametrize("views", [3, 4])
def test_cmc_core_view_and_full_graph_match_eqs_5_and_6(nce, views):
  features, positives, negatives = _cmc_case(30, views)
  normalizers = 60.0 + 5.0 * np.arange(views * views).reshape(views, views)
  extra = dict(normalizers=jnp.asarray(normalizers), num_examples=60) if nce else {}
  reference = functools.partial(cmc_reference, features, positives, negatives, 0.07,
                                normalizers=normalizers if nce else None, num_examples=60)
  for objective, pairs in CMC_PAIRS[views].items():
    got = losses.cmc_loss(features, positives, negatives, temperature=0.07,
                          objective=objective, **extra)
    np.testing.assert_allclose(got, reference(pairs), rtol=1e-5)


def test_cmc_core_view_and_full_graph_are_the_same_for_two_views():
  two = [parts[:2] for parts in _cmc_case(31)]
  core, full = (losses.cmc_loss(*two, temperature=0.1, objective=o)
                for o in ("core", "full_graph"))
  np.testing.assert_array_equal(core, full)
  with pytest.raises(ValueError, match="'graph'"):
    losses.cmc_pairs(2, "graph")


def test_cmc_sharded_equals_unsharded():
  features, positives, negatives = _cmc_case(32)
  softmax = functools.partial(losses.cmc_loss, temperature=0.1, objective="full_graph")
  _bank_sharded_equals_unsharded(softmax, (features, positives), (negatives,), argnums=0)
  nce = functools.partial(losses.cmc_loss, temperature=0.1, objective="core",
                          normalizers=jnp.full((3, 3), 70.0), num_examples=60)
  _bank_sharded_equals_unsharded(nce, (features, positives), (negatives,), argnums=0)


def cpc_reference(predictions, targets):
  """CPC (van den Oord et al. 2018) eq. 4 over patch grids: for every image b, row i,
  column j and step k with a patch k rows below, -log of the softmax of
  z_{i+k,j}(b) . W_k c_{i,j}(b) among the products with every patch of the batch;
  the mean over those predictions."""
  predictions = np.asarray(predictions, np.float64)
  targets = np.asarray(targets, np.float64)
  n, num_steps, grid = predictions.shape[:3]
  candidates = targets.reshape(-1, targets.shape[-1])
  terms = []
  for b in range(n):
    for k in range(1, num_steps + 1):
      for i in range(grid - k):
        for j in range(grid):
          scores = candidates @ predictions[b, k - 1, i, j]
          positive = targets[b, i + k, j] @ predictions[b, k - 1, i, j]
          terms.append(np.log(np.sum(np.exp(scores))) - positive)
  return np.mean(terms)


def _cpc_case(seed, n=16, steps=2, grid=3, d=8):
  kp, kz = jax.random.split(jax.random.key(seed))
  return (0.5 * jax.random.normal(kp, (n, steps, grid, grid, d)),
          jax.random.normal(kz, (n, grid, grid, d)))


def test_cpc_infonce_matches_eq_4_over_the_patch_grid():
  predictions, targets = _cpc_case(40)
  np.testing.assert_allclose(losses.cpc_infonce(predictions, targets),
                             cpc_reference(predictions, targets), rtol=1e-5)


def test_cpc_infonce_sharded_equals_unsharded():
  _bank_sharded_equals_unsharded(losses.cpc_infonce, _cpc_case(41), (), argnums=(0, 1))
