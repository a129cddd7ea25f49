"""Per-device loss functions.

Every loss takes `axis_name`. With `axis_name=None` it is the paper's
single-device formula; with a mesh axis name (inside `jax.shard_map`) it
gathers what it needs from the other devices and returns the loss of the
global batch, identical on every device. All similarity math runs in float32.
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

# Logit given to an anchor's similarity with itself: exp() of it is exactly 0
# in float32, and unlike -inf it keeps gradients finite.
_MASKED_LOGIT = -1e9


def l2_normalize(x, axis=-1, eps=1e-12):
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis, keepdims=True), eps))


def embedding_std(z):
  """Mean per-dimension std of the l2-normalised embeddings, a collapse monitor.

  About 1/sqrt(d) when the embeddings spread over the sphere, 0 when they
  collapse to a point (Chen & He 2021, SimSiam section 4.1). Call it under
  jit on the whole (sharded) batch, outside any shard_map.
  """
  return jnp.mean(jnp.std(l2_normalize(z), axis=0))


def _gather(x, axis_name):
  """Concatenates `x` from every device along the batch axis, in device order."""
  if axis_name is None:
    return x
  return jax.lax.all_gather(x, axis_name, tiled=True)


def _global_sum(x, axis_name):
  return x if axis_name is None else jax.lax.psum(x, axis_name)


def _first_global_index(local_size, axis_name):
  """Global row of this device's first example."""
  if axis_name is None:
    return 0
  return jax.lax.axis_index(axis_name) * local_size


def _anchor_losses(anchors, positives_all, same_view_all, labels, temperature):
  """Cross-entropy of each anchor against [other view, same view without itself]."""
  logits_other = anchors @ positives_all.T / temperature
  logits_same = anchors @ same_view_all.T / temperature
  rows = jnp.arange(anchors.shape[0])
  logits_same = logits_same.at[rows, labels].set(_MASKED_LOGIT)
  logits = jnp.concatenate([logits_other, logits_same], axis=1)
  return jax.nn.logsumexp(logits, axis=1) - logits_other[rows, labels]


def nt_xent(z_a, z_b, *, temperature, axis_name=None):
  """SimCLR's NT-Xent: the mean loss over all 2N anchors of the global batch.

  Args:
    z_a, z_b: this device's projections of the two views, `[n, d]`; row i of
      each comes from the same image. Normalised here.
    temperature: the softmax temperature tau.
    axis_name: mesh axis to gather negatives across, or None on one device.

  Each anchor's positive is the other view of its image; its negatives are the
  other 2N - 2 views of the global batch (SimCLR, Algorithm 1).
  """
  z_a, z_b = l2_normalize(z_a), l2_normalize(z_b)
  n = z_a.shape[0]
  all_a, all_b = _gather(z_a, axis_name), _gather(z_b, axis_name)
  labels = _first_global_index(n, axis_name) + jnp.arange(n)
  loss_a = _anchor_losses(z_a, all_b, all_a, labels, temperature)
  loss_b = _anchor_losses(z_b, all_a, all_b, labels, temperature)
  total = _global_sum(jnp.sum(loss_a) + jnp.sum(loss_b), axis_name)
  return total / (2 * all_a.shape[0])


# ------------------------------------------------------ NT-Xent's variants ----
# Each treats the global batch as nt_xent does: 2N anchors (both views of every image),
# each with one positive (the other view of its image) and 2N - 2 negatives (every other
# view); the loss is the mean over the anchors.


def _anchor_similarities(z_a, z_b, axis_name):
  """Cosine similarities of this device's 2n anchors with the global batch's 2N views.

  Returns (sims `[2n, 2N]`, positive `[2n]`, negative `[2n, 2N]` bool): anchors are this
  device's views a then b; columns are the global views a then b; `positive` is each
  anchor's similarity with its other view, `negative` marks its 2N - 2 negatives.
  """
  z_a, z_b = l2_normalize(z_a), l2_normalize(z_b)
  n = z_a.shape[0]
  candidates = jnp.concatenate([_gather(z_a, axis_name), _gather(z_b, axis_name)])
  num_images = candidates.shape[0] // 2
  image = _first_global_index(n, axis_name) + jnp.arange(n)
  own = jnp.concatenate([image, image + num_images])
  other = jnp.concatenate([image + num_images, image])
  sims = jnp.concatenate([z_a, z_b]) @ candidates.T
  columns = jnp.arange(2 * num_images)[None, :]
  negative = (columns != own[:, None]) & (columns != other[:, None])
  positive = jnp.take_along_axis(sims, other[:, None], axis=1)[:, 0]
  return sims, positive, negative


def _mean_over_anchors(per_anchor, axis_name):
  return _global_sum(jnp.sum(per_anchor), axis_name) / _global_sum(per_anchor.shape[0], axis_name)


def _masked_logsumexp(x, mask):
  return jax.nn.logsumexp(jnp.where(mask, x, _MASKED_LOGIT), axis=1)


def debiased_nt_xent(z_a, z_b, *, temperature, tau_plus, beta=0.0, axis_name=None):
  """The debiased contrastive loss (Chuang et al. 2020, eq. 6), with hardness weighting
  beta > 0 the hard-negative loss of Robinson et al. 2021 (eq. 4 and its estimator).

  Per anchor with positive logit p = s+/t and negative logits l_k = s_k/t, M = 2N - 2:
    Ng = max((M * sum_k w_k e^{l_k} - tau_plus * M * e^p) / (1 - tau_plus), M e^{-1/t})
    loss = -log(e^p / (e^p + Ng)),   w = softmax_k(beta * l_k).
  With beta = 0, w_k = 1/M and Ng estimates the negatives' sum without the false
  negatives that share the anchor's class (prior tau_plus); the clip is Ng's value when
  every negative is opposite the anchor. With tau_plus = 0 and beta = 0 this is nt_xent.
  Computed in log space, so a small t cannot overflow; the weights carry gradient, as in
  the official code. tau_plus in [0, 1).
  """
  sims, positive, negative = _anchor_similarities(z_a, z_b, axis_name)
  logits, positive_logit = sims / temperature, positive / temperature
  log_m = jnp.log(jnp.sum(negative, axis=1).astype(jnp.float32))
  # log(M * sum_k w_k e^{l_k}): w_k = e^{beta l_k} / sum_j e^{beta l_j}.
  log_negatives = (_masked_logsumexp((1.0 + beta) * logits, negative)
                   - _masked_logsumexp(beta * logits, negative) + log_m)
  # Subtracting the expected false negatives, tau_plus * M * e^p, from that sum.
  ratio = tau_plus * jnp.exp(log_m + positive_logit - log_negatives)
  log_corrected = (log_negatives + jnp.log1p(-jnp.minimum(ratio, 1.0 - 1e-6))
                   - jnp.log1p(-tau_plus))
  log_corrected = jnp.where(ratio < 1.0, log_corrected, -jnp.inf)
  log_ng = jnp.maximum(log_corrected, log_m - 1.0 / temperature)
  # -log(e^p / (e^p + Ng)) = softplus(log Ng - p): exact when Ng << e^p too.
  return _mean_over_anchors(jax.nn.softplus(log_ng - positive_logit), axis_name)


def semi_hard_negatives(sims, positive, negative):
  """FaceNet's semi-hard negative of each anchor (Schroff et al. 2015; SimCLR's Table 4):
  the most similar negative that is still less similar than the positive; an anchor with
  none takes its least similar negative, as TensorFlow's triplet_semihard_loss does.
  Returns the column `[2n]` into `sims`."""
  below = negative & (sims < positive[:, None])
  hardest_below = jnp.argmax(jnp.where(below, sims, -jnp.inf), axis=1)
  easiest = jnp.argmin(jnp.where(negative, sims, jnp.inf), axis=1)
  return jnp.where(jnp.any(below, axis=1), hardest_below, easiest)


def nt_logistic(z_a, z_b, *, temperature, semi_hard=False, axis_name=None):
  """SimCLR's NT-Logistic (Chen et al. 2020, Table 2): per (anchor, negative) pair
  -log sigmoid(s+/t) - log sigmoid(-s-/t), the mean over each anchor's negatives, so per
  anchor -log sigmoid(s+/t) - mean_k log sigmoid(-s_k/t). `semi_hard` keeps only the
  negatives less similar than the positive (an anchor with none keeps its positive term).
  """
  sims, positive, negative = _anchor_similarities(z_a, z_b, axis_name)
  if semi_hard:
    negative = negative & (sims < positive[:, None])
  count = jnp.maximum(jnp.sum(negative, axis=1), 1)
  negative_term = jnp.sum(jnp.where(negative, jax.nn.log_sigmoid(-sims / temperature), 0.0),
                          axis=1) / count
  per_anchor = -jax.nn.log_sigmoid(positive / temperature) - negative_term
  return _mean_over_anchors(per_anchor, axis_name)


def margin_triplet(z_a, z_b, *, margin, semi_hard=False, axis_name=None):
  """SimCLR's margin triplet loss (Chen et al. 2020, Table 2): per (anchor, negative) pair
  max(s- - s+ + m, 0) on cosine similarities, the mean over each anchor's negatives; with
  `semi_hard`, each anchor's one semi-hard negative (`semi_hard_negatives`)."""
  sims, positive, negative = _anchor_similarities(z_a, z_b, axis_name)
  hinge = jax.nn.relu(sims - positive[:, None] + margin)
  if semi_hard:
    chosen = semi_hard_negatives(sims, positive, negative)
    per_anchor = jnp.take_along_axis(hinge, chosen[:, None], axis=1)[:, 0]
  else:
    per_anchor = jnp.sum(jnp.where(negative, hinge, 0.0), axis=1) / jnp.sum(negative, axis=1)
  return _mean_over_anchors(per_anchor, axis_name)


def decoupled_nt_xent(z_a, z_b, *, temperature, weight_sigma=None, axis_name=None):
  """Decoupled contrastive learning (Yeh et al. 2022, eq. 6): NT-Xent without the
  positive in the denominator, per anchor -w * s+/t + log sum_k e^{s_k/t} over the
  2N - 2 negatives. w = 1 (DCL); with `weight_sigma` (DCLW, sigma 0.5) the von
  Mises-Fisher weight w = 2 - e^{s+/sigma} / mean_i e^{s_i+/sigma}, the mean over the
  global batch's N positive pairs (the official code's 2 - N softmax over its batch).
  The mean over the 2N anchors: half the official sum of the two directions' means."""
  sims, positive, negative = _anchor_similarities(z_a, z_b, axis_name)
  weight = 1.0
  if weight_sigma is not None:
    # exp(s/sigma - 1/sigma) <= 1 keeps the mean finite for any sigma.
    scaled = jnp.exp((positive - 1.0) / weight_sigma)
    weight = 2.0 - scaled / _mean_over_anchors(scaled, axis_name)
  per_anchor = -weight * positive / temperature + _masked_logsumexp(sims / temperature, negative)
  return _mean_over_anchors(per_anchor, axis_name)


def alignment_uniformity(z_a, z_b, *, alpha=2.0, t=2.0, uniformity_weight=1.0, axis_name=None):
  """Wang & Isola 2020 (eqs. 4-5, their code's loss): on normalised features,
  alignment E ||f(x) - f(y)||^alpha over the positive pairs, plus uniformity_weight *
  the mean over both views of log E_{i != j} e^{-t ||f(x_i) - f(x_j)||^2}, the pairs
  of distinct images of the global batch."""
  z_a, z_b = l2_normalize(z_a), l2_normalize(z_b)
  # ||a - b|| from 2 - 2 a.b: its gradient stays finite where a view equals the other.
  squared = jnp.maximum(2.0 - 2.0 * jnp.sum(z_a * z_b, axis=1), 0.0)
  alignment = _mean_over_anchors(jnp.power(squared + 1e-12, alpha / 2.0), axis_name)

  def log_potential(z):
    n = z.shape[0]
    others = _gather(z, axis_name)
    rows = _first_global_index(n, axis_name) + jnp.arange(n)
    distinct = jnp.arange(others.shape[0])[None, :] != rows[:, None]
    energy = jnp.exp(-t * jnp.maximum(2.0 - 2.0 * z @ others.T, 0.0))
    total = _global_sum(jnp.sum(jnp.where(distinct, energy, 0.0)), axis_name)
    return jnp.log(total / (others.shape[0] * (others.shape[0] - 1)))

  uniformity = 0.5 * (log_potential(z_a) + log_potential(z_b))
  return alignment + uniformity_weight * uniformity


def moco_infonce(q, k, *, temperature, queue=None, axis_name=None):
  """MoCo's InfoNCE: the mean over the global batch of -log p(positive key).

  Args:
    q: this device's queries, `[n, d]`; normalised here.
    k: their positive keys, `[n, d]` (row i is the key of query i); normalised
      here. Treated as constants only by the caller's stop_gradient.
    temperature: the softmax temperature tau.
    queue: `[K, d]` negative keys, normalised, the same on every device (MoCo
      v2). Without it the negatives are the other keys of the global batch,
      gathered across devices (MoCo v3).
    axis_name: mesh axis of the batch, or None on one device.
  """
  q, k = l2_normalize(q), l2_normalize(k)
  n = q.shape[0]
  if queue is None:
    logits = q @ _gather(k, axis_name).T / temperature
    labels = _first_global_index(n, axis_name) + jnp.arange(n)
    positives = logits[jnp.arange(n), labels]
  else:
    positives = jnp.sum(q * k, axis=1) / temperature
    negatives = q @ queue.astype(jnp.float32).T / temperature
    logits = jnp.concatenate([positives[:, None], negatives], axis=1)
  total = _global_sum(jnp.sum(jax.nn.logsumexp(logits, axis=1) - positives), axis_name)
  return total / _global_sum(n, axis_name)


def byol_regression(p, z, *, axis_name=None):
  """BYOL's loss: the batch mean of ||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z).

  `z` is the target projection; the caller stops its gradient.
  """
  cos = jnp.sum(l2_normalize(p) * l2_normalize(z), axis=-1)
  return _global_sum(jnp.sum(2.0 - 2.0 * cos), axis_name) / _global_sum(p.shape[0], axis_name)


def swapped_prediction(scores, codes, *, temperature):
  """SwAV's cross-entropy of one crop's prototype scores against another's codes.

  Per example: -sum_k codes_k log softmax(scores / temperature)_k; the mean
  over the rows given (call it under jit on the global batch).
  """
  log_p = jax.nn.log_softmax(scores.astype(jnp.float32) / temperature, axis=-1)
  return -jnp.mean(jnp.sum(codes * log_p, axis=-1))


def _global_count(x, axis_name):
  """Rows of `x` summed over the devices: the global batch size."""
  return _global_sum(x.shape[0], axis_name)


def _global_mean(x, axis_name):
  """Mean over the rows of the global batch, the same on every device."""
  return _global_sum(jnp.sum(x, axis=0), axis_name) / _global_count(x, axis_name)


def simsiam_loss(p_a, p_b, z_a, z_b, *, axis_name=None):
  """SimSiam's symmetric negative cosine similarity (Chen & He 2021, eq. 4).

  L = D(p_a, sg(z_b)) / 2 + D(p_b, sg(z_a)) / 2, with D(p, z) = -cos(p, z)
  averaged over the global batch.

  Args:
    p_a, p_b: this device's predictor outputs for the two views, `[n, d]`.
    z_a, z_b: their projections, `[n, d]`. The stop-gradient sg() on them is
      applied here, because it is the method itself (section 4.1: without it
      the representations collapse), so their gradient is zero.
    axis_name: mesh axis of the batch, or None on one device.

  The cosine clamps each norm at 1e-8, as the official `main_simsiam.py`
  does through `nn.CosineSimilarity(dim=1)`.
  """
  z_a, z_b = jax.lax.stop_gradient(z_a), jax.lax.stop_gradient(z_b)
  cosine = lambda p, z: jnp.sum(l2_normalize(p, eps=1e-16) * l2_normalize(z, eps=1e-16), -1)
  return -0.5 * _global_mean(cosine(p_a, z_b) + cosine(p_b, z_a), axis_name)


def _off_diagonal_square_sum(m):
  """sum_{i != j} m_ij^2, with the diagonal masked rather than subtracted."""
  return jnp.sum(jnp.square(m - jnp.diag(jnp.diagonal(m))))


def _batch_standardize(z, axis_name, eps):
  """(z - mean) / sqrt(var + eps) per dimension, statistics of the global batch.

  What an affine-free BatchNorm in training mode computes under synced BN: the
  variance is the biased one (divided by the global batch size).
  """
  z = z.astype(jnp.float32)
  centred = z - _global_mean(z, axis_name)
  return centred * jax.lax.rsqrt(_global_mean(jnp.square(centred), axis_name) + eps)


def cross_correlation(z_a, z_b, *, axis_name=None, eps=1e-5):
  """Barlow Twins' cross-correlation matrix C, `[d, d]` (Zbontar et al. 2021, eq. 2).

  C_ij = sum_b za_bi zb_bj / N over the N examples of the global batch, where
  each view is first standardised per dimension over the global batch (the
  paper's eq. 2 up to the eps, written as the official code computes it). The
  official `main.py` does this with `nn.BatchNorm1d(d, affine=False)` under
  SyncBatchNorm (so the biased global variance, eps 1e-5), then divides the
  local product by the global batch size and all-reduces it; so does this.
  """
  a = _batch_standardize(z_a, axis_name, eps)
  b = _batch_standardize(z_b, axis_name, eps)
  return _global_sum(a.T @ b, axis_name) / _global_count(a, axis_name)


def barlow_twins_loss(z_a, z_b, *, lambd=0.0051, axis_name=None):
  """Barlow Twins' redundancy-reduction loss (Zbontar et al. 2021, eq. 1).

  L = sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2, with C from
  `cross_correlation`; lambd 0.0051 is the official `--lambd` default.
  """
  c = cross_correlation(z_a, z_b, axis_name=axis_name)
  return jnp.sum(jnp.square(1.0 - jnp.diagonal(c))) + lambd * _off_diagonal_square_sum(c)


def _variance_and_covariance(z, axis_name, eps):
  """One view's VICReg variance and covariance terms over the global batch."""
  centred = z - _global_mean(z, axis_name)
  dof = _global_count(z, axis_name) - 1  # unbiased, as torch's var and the official cov
  std = jnp.sqrt(_global_sum(jnp.sum(jnp.square(centred), axis=0), axis_name) / dof + eps)
  cov = _global_sum(centred.T @ centred, axis_name) / dof
  return jnp.mean(jax.nn.relu(1.0 - std)), _off_diagonal_square_sum(cov) / z.shape[1]


def vicreg_terms(z_a, z_b, *, axis_name=None, eps=1e-4):
  """VICReg's three terms, unweighted (Bardes et al. 2022, section 2).

  - invariance: mean over the global batch and the d dimensions of
    (za - zb)^2 (the official `F.mse_loss` on each device's batch, whose
    gradients DDP then averages);
  - variance: mean over dimensions of relu(1 - sqrt(Var(z_j) + eps)), Var the
    unbiased variance over the global batch (torch's `var` on the gathered
    embeddings, divided by N - 1), eps 1e-4; the mean of the two views, as
    the official code takes it (the paper writes their sum);
  - covariance: sum_{i != j} Cov(z)_ij^2 / d, Cov over the global batch
    divided by N - 1 (the official code divides by `batch_size - 1`, the
    global batch); summed over the two views, as `main_vicreg.py` does.
  """
  z_a, z_b = z_a.astype(jnp.float32), z_b.astype(jnp.float32)
  num_values = _global_count(z_a, axis_name) * z_a.shape[1]
  invariance = _global_sum(jnp.sum(jnp.square(z_a - z_b)), axis_name) / num_values
  variance_a, covariance_a = _variance_and_covariance(z_a, axis_name, eps)
  variance_b, covariance_b = _variance_and_covariance(z_b, axis_name, eps)
  return dict(invariance=invariance, variance=(variance_a + variance_b) / 2,
              covariance=covariance_a + covariance_b)


def vicreg_loss(z_a, z_b, *, invariance=25.0, variance=25.0, covariance=1.0, axis_name=None):
  """VICReg's loss: the weighted sum of `vicreg_terms` (Bardes et al. 2022, section 2).

  The default weights lambda = mu = 25, nu = 1 are the paper's and the
  official `--sim-coeff`, `--std-coeff`, `--cov-coeff`.
  """
  terms = vicreg_terms(z_a, z_b, axis_name=axis_name)
  return (invariance * terms["invariance"] + variance * terms["variance"]
          + covariance * terms["covariance"])


def _global_max(x, axis_name):
  return x if axis_name is None else jax.lax.pmax(x, axis_name)


def instance_softmax(z, index, bank, *, temperature, num_examples, axis_name=None):
  """NPID's non-parametric softmax over the whole memory bank (Wu et al. 2018, eq. 2).

  Per example i with feature v: -log exp(m_i . v / tau) / sum_j exp(m_j . v / tau), j
  over the N rows of the bank, m_i its own (pre-update) row; the mean over the global
  batch. The official `LinearAverage` with `CrossEntropyLoss`.

  Args:
    z: this device's features, `[n, d]`; normalised here.
    index: their rows in the bank, `[n]`.
    bank: this device's rows of the bank, `[R, d]`, unit rows; device k holds rows
      k*R .. (k+1)*R - 1 (the bank sharded by rows). Rows from `num_examples` on are
      padding and take no part.
    temperature: tau.
    num_examples: N, the bank's rows that hold examples.
    axis_name: mesh axis the batch and the bank are split over, or None on one device.

  Every device scores the gathered batch against its own rows; the logsumexp over all N
  rows is assembled with `pmax` and `psum`, so no device holds more than its rows.
  """
  z_all = _gather(l2_normalize(z), axis_name)
  index_all = _gather(index, axis_name)
  rows = _first_global_index(bank.shape[0], axis_name) + jnp.arange(bank.shape[0])
  logits = z_all @ bank.astype(jnp.float32).T / temperature
  logits = jnp.where(rows[None, :] < num_examples, logits, _MASKED_LOGIT)
  peak = _global_max(jax.lax.stop_gradient(jnp.max(logits, axis=1)), axis_name)
  sum_exp = _global_sum(jnp.sum(jnp.exp(logits - peak[:, None]), axis=1), axis_name)
  own = rows[None, :] == index_all[:, None]
  positive = _global_sum(jnp.sum(jnp.where(own, logits, 0.0), axis=1), axis_name)
  return jnp.mean(peak + jnp.log(sum_exp) - positive)


def _bank_logits(z, positives, negatives, temperature):
  """s(v, m_i) / tau `[n]` and s(v, m_k) / tau `[n, K]` for normalised v."""
  z = l2_normalize(z)
  positive = jnp.sum(z * positives.astype(jnp.float32), axis=1) / temperature
  return positive, z @ negatives.astype(jnp.float32).T / temperature


def nce_normalizer(z, positives, negatives, *, temperature, num_examples, axis_name=None):
  """NPID's estimate of the partition function Z (Wu et al. 2018, section 3.2):
  N x the mean of exp(s / tau) over the global batch's positive and noise pairs, as the
  official `NCEAverage` sets it once, at the first iteration. Carries no gradient."""
  positive, negative = _bank_logits(z, positives, negatives, temperature)
  total = _global_sum(jnp.sum(jnp.exp(positive)) + jnp.sum(jnp.exp(negative)), axis_name)
  count = _global_count(z, axis_name) * (negatives.shape[0] + 1)
  return jax.lax.stop_gradient(num_examples * total / count)


def instance_nce(z, positives, negatives, *, temperature, normalizer, num_examples,
                 axis_name=None):
  """NPID's noise-contrastive estimation against a memory bank (Wu et al. 2018, eqs. 3-6).

  With P(i|v) = exp(m_i . v / tau) / Z and uniform noise P_n = 1/N, K noise rows:
  h(i, v) = P(i|v) / (P(i|v) + K P_n), and per example
  -log h(i, v) - sum_k log(1 - h(k, v)); the mean over the global batch (the official
  `NCECriterion`, summed over the positive and its K noise samples, divided by the batch).
  Written in log-space: -log h = softplus(log(K P_n) - log P), -log(1 - h) =
  softplus(log P - log(K P_n)).

  Args:
    z: this device's features, `[n, d]`; normalised here.
    positives: their own rows of the bank m_i, `[n, d]`, unit rows (constants).
    negatives: K noise rows of the bank, `[K, d]`, the same for every example and device
      (drawn uniformly from the N examples; the official code draws K per example).
    temperature: tau.
    normalizer: Z (`nce_normalizer`, estimated once and then kept).
    num_examples: N, the training split's size.
    axis_name: mesh axis of the batch, or None on one device.
  """
  positive, negative = _bank_logits(z, positives, negatives, temperature)
  log_z = jnp.log(normalizer)
  log_noise = jnp.log(negatives.shape[0] / num_examples)  # log(K P_n)
  per_example = (jax.nn.softplus(log_noise - (positive - log_z))
                 + jnp.sum(jax.nn.softplus(negative - log_z - log_noise), axis=1))
  return _global_sum(jnp.sum(per_example), axis_name) / _global_count(z, axis_name)


def pirl_loss(f, g, positives, negatives, *, temperature, normalizer=None, num_examples=None,
              weight=0.5, axis_name=None):
  """PIRL's loss (Misra & van der Maaten 2020, eq. 5):
  lambda * L(m_I, g(v_It)) + (1 - lambda) * L(m_I, f(v_I)).

  Each term scores the features against the bank rows m_I of the images (positives) and
  the same K noise rows (the bank's features of other images, eq. 4). With a
  `normalizer` Z each term is the paper's NCE, `instance_nce`, with one Z for both, as
  the official (VISSL) `NCELossWithMemory` shares its `Z`; without, each is InfoNCE, the
  cross-entropy of the positive among the K + 1 rows (`moco_infonce` with the noise rows
  as its queue; VISSL's `loss_type: cross_entropy`).

  Args:
    f: this device's image features f(v_I), `[n, d]`.
    g: its jigsaw features g(v_It), `[n, d]`.
    weight: lambda, 0.5 in the paper.
  """
  def term(z):
    if normalizer is None:
      return moco_infonce(z, positives, temperature=temperature, queue=negatives,
                          axis_name=axis_name)
    return instance_nce(z, positives, negatives, temperature=temperature,
                        normalizer=normalizer, num_examples=num_examples, axis_name=axis_name)
  return weight * term(g) + (1.0 - weight) * term(f)


# ------------------------------------------------------------------- CMC ----
CMC_OBJECTIVES = ("core", "full_graph")


def cmc_pairs(num_views, objective):
  """The pairs of views (i, j), i < j, that CMC contrasts (Tian et al. 2020, section 3.3):
  'core' pairs the first view with every other, L_C = sum_{j>1} L(V_1, V_j); 'full_graph'
  pairs every two, L_F = sum_{i<j} L(V_i, V_j). With two views both are the one pair."""
  if objective not in CMC_OBJECTIVES:
    raise ValueError(f"CMC objective {objective!r} is unknown; expected one of {CMC_OBJECTIVES}")
  if objective == "core":
    return tuple((0, j) for j in range(1, num_views))
  return tuple((i, j) for j in range(num_views) for i in range(j))


def cmc_loss(features, positives, negatives, *, temperature, objective="core",
             normalizers=None, num_examples=None, axis_name=None):
  """CMC's loss (Tian et al. 2020, eqs. 2-3 and 5-6): over the objective's pairs of views,
  L(V_i, V_j) = L(anchor V_i, bank of V_j) + L(anchor V_j, bank of V_i).

  An anchor is this step's feature of one view of an image; it is scored against the
  memory bank of the other view: its positive is that bank's row of the same image, its
  negatives K rows of that bank (other images; the official code draws the same rows
  for every view). With `normalizers` each term is NCE (`instance_nce`, the official
  `NCECriterion`); without, the cross-entropy of the positive among the K + 1 rows
  (`moco_infonce` with the rows as its queue, the official `NCESoftmaxLoss`).

  Args:
    features: M arrays `[n, d]`, this device's features of each view; normalised here.
    positives: M arrays `[n, d]`, each view's bank rows of the batch's images.
    negatives: M arrays `[K, d]`, each view's K noise rows, the same on every device.
    objective: 'core' or 'full_graph' (`cmc_pairs`).
    normalizers: `[M, M]`, Z of anchor view a against the bank of view b, or None.
    num_examples: N, the bank's examples (NCE's noise distribution 1/N).
  """
  def contrast(anchor, bank):
    if normalizers is None:
      return moco_infonce(features[anchor], positives[bank], temperature=temperature,
                          queue=negatives[bank], axis_name=axis_name)
    return instance_nce(features[anchor], positives[bank], negatives[bank],
                        temperature=temperature, normalizer=normalizers[anchor, bank],
                        num_examples=num_examples, axis_name=axis_name)
  return sum(contrast(i, j) + contrast(j, i) for i, j in cmc_pairs(len(features), objective))


# ------------------------------------------------------------------- CPC ----
def cpc_infonce(predictions, targets, *, axis_name=None):
  """CPC's InfoNCE over patch grids (van den Oord et al. 2018, eq. 4; Henaff et al. 2020,
  eq. 2): the mean over the global batch's predictions of -log p(the right patch).

  The prediction W_k c_{i,j} of image b, for the patch k rows below, is scored by dot
  product against every patch encoding of the global batch (the same image's other
  patches and all of the other images'); its positive is z_{i+k,j} of image b.

  Args:
    predictions: this device's `[n, K, G, G, d]`: predictions[b, k-1, i, j] = W_k c_{i,j}
      for k = 1..K; rows i >= G - k have no patch below them and are ignored.
    targets: this device's patch encodings z `[n, G, G, d]`.
    axis_name: mesh axis of the batch, or None on one device.
  """
  n, num_steps, grid = predictions.shape[:3]
  dim = targets.shape[-1]
  candidates = _gather(targets.astype(jnp.float32), axis_name).reshape(-1, dim)
  first = _first_global_index(n, axis_name)
  total, count = 0.0, 0
  for k in range(1, min(num_steps, grid - 1) + 1):
    queries = predictions[:, k - 1, :grid - k].astype(jnp.float32).reshape(-1, dim)
    image, row, column = jnp.meshgrid(jnp.arange(n), jnp.arange(grid - k), jnp.arange(grid),
                                      indexing="ij")
    labels = (((first + image) * grid + row + k) * grid + column).reshape(-1)
    logits = queries @ candidates.T
    positive = jnp.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
    total += jnp.sum(jax.nn.logsumexp(logits, axis=1) - positive)
    count += queries.shape[0]
  return _global_sum(total, axis_name) / _global_sum(count, axis_name)


NORM_PIX_EPS = 1e-6  # MAE's, inside the square root of the patch's variance


def normalized_patches(patches, eps=NORM_PIX_EPS):
  """Each patch [..., P] standardised by its own mean and (biased) variance:
  (x - mean) / sqrt(var + eps), MAE's norm_pix_loss target. Also returns the mean and
  var, to undo it."""
  patches = patches.astype(jnp.float32)
  mean = jnp.mean(patches, axis=-1, keepdims=True)
  var = jnp.var(patches, axis=-1, keepdims=True)
  return (patches - mean) / jnp.sqrt(var + eps), mean, var


def mae_loss(predicted, patches, mask, *, norm_pix=True, axis_name=None):
  """Masked autoencoder reconstruction (He et al. 2022, section 3): the squared error
  averaged over each patch's pixels, then over the masked patches of the global batch,
  sum_i,l m_il e_il / sum_i,l m_il. The targets are the pixels of `patches` [B, L, P],
  each patch standardised on its own with norm_pix (the paper's better variant);
  `mask` [B, L] is 1 where the patch was hidden, so visible patches count for nothing."""
  target = normalized_patches(patches)[0] if norm_pix else patches.astype(jnp.float32)
  error = jnp.mean((predicted.astype(jnp.float32) - target) ** 2, axis=-1)
  mask = mask.astype(jnp.float32)
  masked = _global_sum(jnp.sum(error * mask), axis_name)
  return masked / jnp.maximum(_global_sum(jnp.sum(mask), axis_name), 1.0)


class DinoLoss(NamedTuple):
  loss: Any
  center: Any            # [K] the teacher centre after this step's EMA update
  teacher_entropy: Any   # mean entropy of the teacher's centred, sharpened distributions


def dino_loss(student_logits_per_crop, teacher_logits_per_global_crop, center, *,
              student_temp, teacher_temp, center_momentum=0.9, axis_name=None):
  """DINO's self-distillation loss and its centre update (Caron et al. 2021, Algorithm 1).

  The teacher's distribution over K outputs is softmax((t - center) / teacher_temp), a
  constant; the student's is softmax(s / student_temp). The loss is the cross-entropy
  -sum_k p_t log p_s averaged over every pair (teacher global crop i, student crop j != i)
  and over the global batch. The new centre is center_momentum * center +
  (1 - center_momentum) * the mean of the teacher's logits over the global batch and its
  global crops.

  Args:
    student_logits_per_crop: [n, V, K], every crop of this device's examples, the global
      crops first, in the teacher's order.
    teacher_logits_per_global_crop: [n, G, K], G <= V.
    center: [K], replicated.
    axis_name: mesh axis of the batch, or None on one device.
  """
  teacher = jax.lax.stop_gradient(teacher_logits_per_global_crop.astype(jnp.float32))
  targets = jax.nn.softmax((teacher - center) / teacher_temp, axis=-1)
  log_probs = jax.nn.log_softmax(student_logits_per_crop.astype(jnp.float32) / student_temp,
                                 axis=-1)
  num_global, num_crops = teacher.shape[1], log_probs.shape[1]
  cross_entropy = -jnp.einsum("nik,njk->nij", targets, log_probs)  # [n, G, V]
  other_crop = jnp.arange(num_global)[:, None] != jnp.arange(num_crops)[None, :]
  per_example = jnp.sum(cross_entropy * other_crop, axis=(1, 2)) / jnp.sum(other_crop)
  entropy = jnp.sum(jax.scipy.special.entr(targets), axis=-1)  # [n, G]
  batch_center = _global_mean(teacher.reshape(-1, teacher.shape[-1]), axis_name)
  new_center = center_momentum * center + (1 - center_momentum) * batch_center
  return DinoLoss(_global_mean(per_example, axis_name), new_center,
                  _global_mean(jnp.mean(entropy, axis=1), axis_name))
