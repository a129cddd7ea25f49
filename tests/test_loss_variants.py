"""NT-Xent's variants against NumPy transcriptions of their papers and their 8-device forms.

Each reference is written per anchor with loops in float64: 2N anchors (both views of N
images), the positive the other view of the anchor's image, the 2N - 2 other views its
negatives.
"""
import functools

import chex
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jax_ssl import compare, config as config_lib, losses, parallel
from jax_ssl.methods import simclr


def _unit_views(z_a, z_b):
  z = np.concatenate([z_a, z_b]).astype(np.float64)
  return z / np.linalg.norm(z, axis=1, keepdims=True)


def _anchors(z_a, z_b):
  """(sims, [(positive column, negative columns)] per anchor) over the 2N views."""
  z = _unit_views(z_a, z_b)
  n = len(z_a)
  pairs = []
  for k in range(2 * n):
    positive = (k + n) % (2 * n)
    pairs.append((positive, [j for j in range(2 * n) if j not in (k, positive)]))
  return z @ z.T, pairs


def debiased_reference(z_a, z_b, t, tau_plus, beta=0.0):
  """Chuang et al. 2020 eq. 6; Robinson et al. 2021's reweighting for beta > 0."""
  sims, pairs = _anchors(z_a, z_b)
  total = 0.0
  for k, (positive, negatives) in enumerate(pairs):
    pos = np.exp(sims[k, positive] / t)
    neg = np.array([np.exp(sims[k, j] / t) for j in negatives])
    m = len(negatives)
    importance = neg ** beta
    reweighted = np.sum(importance * neg) / np.mean(importance)
    ng = max((reweighted - tau_plus * m * pos) / (1 - tau_plus), m * np.exp(-1 / t))
    total += -np.log(pos / (pos + ng))
  return total / len(pairs)


def _log_sigmoid(x):
  return -np.log1p(np.exp(-x))


def nt_logistic_reference(z_a, z_b, t, semi_hard):
  """SimCLR Table 2: -log sigma(s+/t) - log sigma(-s-/t), averaged over the pairs."""
  sims, pairs = _anchors(z_a, z_b)
  total = 0.0
  for k, (positive, negatives) in enumerate(pairs):
    s_pos = sims[k, positive]
    if semi_hard:
      negatives = [j for j in negatives if sims[k, j] < s_pos]
    negative_term = (np.mean([_log_sigmoid(-sims[k, j] / t) for j in negatives])
                     if negatives else 0.0)
    total += -_log_sigmoid(s_pos / t) - negative_term
  return total / len(pairs)


def semi_hard_reference(sims, k, positive, negatives):
  """FaceNet's rule as TensorFlow's triplet_semihard_loss applies it."""
  below = [j for j in negatives if sims[k, j] < sims[k, positive]]
  if below:
    return max(below, key=lambda j: sims[k, j])
  return min(negatives, key=lambda j: sims[k, j])


def margin_triplet_reference(z_a, z_b, margin, semi_hard):
  sims, pairs = _anchors(z_a, z_b)
  total = 0.0
  for k, (positive, negatives) in enumerate(pairs):
    if semi_hard:
      negatives = [semi_hard_reference(sims, k, positive, negatives)]
    total += np.mean([max(sims[k, j] - sims[k, positive] + margin, 0.0) for j in negatives])
  return total / len(pairs)


def decoupled_reference(z_a, z_b, t, sigma):
  """Yeh et al. 2022 as their code computes it: one direction's mean over its anchors,
  -w s+/t + log sum over the anchor's view and the other view without the two pairs;
  here the mean of the two directions."""
  z = _unit_views(z_a, z_b)
  n = len(z_a)
  a, b = z[:n], z[n:]

  def one_way(u, v):
    positive = np.array([u[i] @ v[i] for i in range(n)])
    weights = np.ones(n)
    if sigma is not None:
      e = np.exp(positive / sigma)
      weights = 2 - n * e / e.sum()
    total = 0.0
    for i in range(n):
      negatives = [u[i] @ u[j] for j in range(n) if j != i] + [u[i] @ v[j] for j in range(n)
                                                                 if j != i]
      total += -weights[i] * positive[i] / t + np.log(np.sum(np.exp(np.array(negatives) / t)))
    return total / n

  return (one_way(a, b) + one_way(b, a)) / 2


def alignment_uniformity_reference(z_a, z_b, alpha, t, weight):
  """Wang & Isola 2020: align_loss + weight * (uniform_loss(x) + uniform_loss(y)) / 2."""
  z = _unit_views(z_a, z_b)
  n = len(z_a)
  a, b = z[:n], z[n:]
  alignment = np.mean([np.linalg.norm(a[i] - b[i]) ** alpha for i in range(n)])

  def uniformity(x):
    pairs = [np.exp(-t * np.sum((x[i] - x[j]) ** 2)) for i in range(n) for j in range(i + 1, n)]
    return np.log(np.mean(pairs))

  return alignment + weight * (uniformity(a) + uniformity(b)) / 2


def _views(seed, n=16, d=8, noise=0.5):
  ka, kb = jax.random.split(jax.random.key(seed))
  z_a = jax.random.normal(ka, (n, d))
  return z_a, z_a + noise * jax.random.normal(kb, (n, d))  # correlated, as trained views


# (name, the loss, its reference), for every option of config.simclr.loss but nt_xent.
VARIANTS = [
    ("debiased", functools.partial(losses.debiased_nt_xent, temperature=0.5, tau_plus=0.1),
     lambda a, b: debiased_reference(a, b, 0.5, 0.1)),
    ("debiased_hard", functools.partial(losses.debiased_nt_xent, temperature=0.5, tau_plus=0.1,
                                        beta=1.0),
     lambda a, b: debiased_reference(a, b, 0.5, 0.1, beta=1.0)),
    ("nt_logistic", functools.partial(losses.nt_logistic, temperature=0.2),
     lambda a, b: nt_logistic_reference(a, b, 0.2, False)),
    ("nt_logistic_semi_hard", functools.partial(losses.nt_logistic, temperature=0.2,
                                                semi_hard=True),
     lambda a, b: nt_logistic_reference(a, b, 0.2, True)),
    ("margin_triplet", functools.partial(losses.margin_triplet, margin=0.5),
     lambda a, b: margin_triplet_reference(a, b, 0.5, False)),
    ("margin_triplet_semi_hard", functools.partial(losses.margin_triplet, margin=0.5,
                                                   semi_hard=True),
     lambda a, b: margin_triplet_reference(a, b, 0.5, True)),
    ("decoupled", functools.partial(losses.decoupled_nt_xent, temperature=0.1),
     lambda a, b: decoupled_reference(a, b, 0.1, None)),
    ("decoupled_weighted", functools.partial(losses.decoupled_nt_xent, temperature=0.1,
                                             weight_sigma=0.5),
     lambda a, b: decoupled_reference(a, b, 0.1, 0.5)),
    ("alignment_uniformity", functools.partial(losses.alignment_uniformity, alpha=2.0, t=2.0,
                                               uniformity_weight=1.0),
     lambda a, b: alignment_uniformity_reference(a, b, 2.0, 2.0, 1.0)),
]
NAMES = [name for name, _, _ in VARIANTS]


def test_every_option_of_the_config_is_tested_here():
  assert sorted(NAMES + ["nt_xent"]) == sorted(simclr.LOSSES)


@pytest.mark.parametrize("name,loss,reference", VARIANTS, ids=NAMES)
@pytest.mark.parametrize("noise", [0.5, 2.0])
def test_variant_matches_its_papers_formula(name, loss, reference, noise):
  z_a, z_b = _views(0, noise=noise)
  np.testing.assert_allclose(loss(z_a, z_b), reference(np.asarray(z_a), np.asarray(z_b)),
                             rtol=2e-5, atol=1e-6)


def _sharded(loss):
  mesh = parallel.make_mesh()
  assert mesh.size == 8
  local = functools.partial(loss, axis_name=parallel.DATA_AXIS)
  return jax.shard_map(local, mesh=mesh, in_specs=(P(parallel.DATA_AXIS),) * 2, out_specs=P())


@pytest.mark.parametrize("name,loss,reference", VARIANTS, ids=NAMES)
def test_variant_sharded_on_8_devices_equals_unsharded(name, loss, reference):
  del reference
  z_a, z_b = _views(1, n=32)  # 4 images per device
  sharded = jax.jit(jax.value_and_grad(_sharded(loss), argnums=(0, 1)))(z_a, z_b)
  single = jax.value_and_grad(loss, argnums=(0, 1))(z_a, z_b)
  chex.assert_trees_all_close(sharded, single, atol=1e-5, rtol=1e-5)
  assert all(np.all(np.isfinite(g)) for g in single[1])
  # Every row gets gradient, other devices' negatives included.
  assert np.all(np.abs(np.asarray(sharded[1][0])).sum(axis=1) > 0)


def test_semi_hard_mining_picks_the_same_negatives_on_1_and_8_devices():
  z_a, z_b = _views(2, n=32, noise=1.0)
  z_b = z_b.at[::5].set(-z_a[::5])  # views opposite each other: no negative below them

  def chosen(z_a, z_b, axis_name=None):
    sims, positive, negative = losses._anchor_similarities(z_a, z_b, axis_name)
    return losses.semi_hard_negatives(sims, positive, negative).reshape(2, -1)  # [view, row]

  mesh = parallel.make_mesh()
  sharded = jax.jit(jax.shard_map(
      functools.partial(chosen, axis_name=parallel.DATA_AXIS), mesh=mesh,
      in_specs=(P(parallel.DATA_AXIS),) * 2, out_specs=P(None, parallel.DATA_AXIS)))
  picked = np.asarray(chosen(z_a, z_b))
  np.testing.assert_array_equal(np.asarray(sharded(z_a, z_b)), picked)
  sims, pairs = _anchors(np.asarray(z_a), np.asarray(z_b))
  expected = [semi_hard_reference(sims, k, *pairs[k]) for k in range(len(pairs))]
  np.testing.assert_array_equal(picked.reshape(-1), expected)
  # Both branches of the rule are exercised: anchors with and without a semi-hard negative.
  has_below = [any(sims[k, j] < sims[k, p] for j in negs) for k, (p, negs) in enumerate(pairs)]
  assert any(has_below) and not all(has_below)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_debiased_without_class_prior_or_hardness_is_nt_xent(temperature):
  z_a, z_b = _views(3)
  nt_xent = functools.partial(losses.nt_xent, temperature=temperature)
  debiased = functools.partial(losses.debiased_nt_xent, temperature=temperature, tau_plus=0.0)
  chex.assert_trees_all_close(jax.value_and_grad(debiased)(z_a, z_b),
                              jax.value_and_grad(nt_xent)(z_a, z_b), rtol=1e-5, atol=1e-6)
  # With beta = 0 the hard-negative estimator is the debiased one.
  np.testing.assert_allclose(
      losses.debiased_nt_xent(z_a, z_b, temperature=temperature, tau_plus=0.3, beta=0.0),
      debiased_reference(np.asarray(z_a), np.asarray(z_b), temperature, 0.3), rtol=1e-5)


@pytest.mark.parametrize("tau_plus", [0.99, 0.999999])
def test_debiased_clip_holds_for_a_class_prior_near_its_maximum(tau_plus):
  z_a, z_b = _views(4, noise=0.1)  # positives far above the negatives: the estimate < 0
  t = 0.5
  loss, grads = jax.value_and_grad(functools.partial(
      losses.debiased_nt_xent, temperature=t, tau_plus=tau_plus), argnums=(0, 1))(z_a, z_b)
  sims, pairs = _anchors(np.asarray(z_a), np.asarray(z_b))
  floor = len(pairs[0][1]) * np.exp(-1 / t)  # M e^{-1/t}: every anchor clipped
  clipped = np.mean([np.log1p(floor / np.exp(sims[k, p] / t)) for k, (p, _) in enumerate(pairs)])
  np.testing.assert_allclose(loss, clipped, rtol=1e-5)
  np.testing.assert_allclose(loss, debiased_reference(np.asarray(z_a), np.asarray(z_b), t,
                                                      tau_plus), rtol=1e-5)
  assert all(np.all(np.isfinite(g)) for g in grads)


def test_debiased_stays_finite_at_a_small_temperature():
  z_a, z_b = _views(5, noise=2.0)
  loss, grads = jax.value_and_grad(functools.partial(
      losses.debiased_nt_xent, temperature=0.005, tau_plus=0.1, beta=1.0))(z_a, z_b)
  assert np.isfinite(loss) and np.all(np.isfinite(grads))


def test_the_config_names_a_bad_loss_or_parameter_before_anything_is_built():
  c = config_lib.base_config("simclr")
  c.simclr.loss = "triplet"
  with pytest.raises(ValueError, match=r"config.simclr.loss='triplet' is invalid: expected "
                                       r"one of \('nt_xent', 'debiased'"):
    config_lib.validate(c, num_devices=1)
  for field, value in [("tau_plus", 1.0), ("margin", -0.1), ("weight_sigma", 0.0)]:
    c = config_lib.base_config("simclr")
    c.simclr[field] = value
    with pytest.raises(ValueError, match=rf"config.simclr.{field}={value!r} is invalid"):
      config_lib.validate(c, num_devices=1)


def test_a_sweep_of_the_loss_without_values_runs_every_option():
  planned = compare.variants(["configs/simclr_tiny.py"], "simclr.loss")
  assert [v.name for v in planned] == [f"simclr.loss={name}" for name in simclr.LOSSES]
  assert planned[3].overrides == (("simclr.loss", "nt_logistic"),)
  with pytest.raises(ValueError, match="declared choices"):
    compare.variants(["configs/simclr_tiny.py"], "simclr.temperature")
