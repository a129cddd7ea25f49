"""Per-device loss functions.

Every loss takes `axis_name`. With `axis_name=None` it is the paper's
single-device formula; with a mesh axis name (inside `jax.shard_map`) it
gathers what it needs from the other devices and returns the loss of the
global batch, identical on every device. All similarity math runs in float32.
"""
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
