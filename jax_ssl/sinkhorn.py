"""Sinkhorn-Knopp equipartition for SwAV's codes (Caron et al. 2020, section 3.1).

Finds Q = diag(u) exp(S / epsilon) diag(v) whose K prototype columns each
hold 1/K of the mass and whose B rows each hold 1/B, then returns B * Q so
that every row is a distribution over prototypes. Distributed, B and the
column sums are those of the global batch: psum over `axis_name`.
"""
import jax
import jax.numpy as jnp


def _sum(x, axis_name):
  return x if axis_name is None else jax.lax.psum(x, axis_name)


def sinkhorn(scores, *, epsilon=0.05, num_iters=3, axis_name=None):
  """Soft codes `[B, K]` (rows sum to 1) for this device's prototype scores `[B, K]`.

  Runs in float32. The global maximum is subtracted before exp(): a constant
  factor the normalisations remove, and exp(S / epsilon) stays finite even
  for epsilon far below SwAV's 0.05.
  """
  scores = jax.lax.stop_gradient(scores).astype(jnp.float32) / epsilon
  top = jnp.max(scores)
  if axis_name is not None:
    top = jax.lax.pmax(top, axis_name)
  q = jnp.exp(scores - top)
  num_rows = _sum(q.shape[0], axis_name)
  num_prototypes = q.shape[1]
  q = q / _sum(jnp.sum(q), axis_name)

  def iteration(_, q):
    q = q / (_sum(jnp.sum(q, axis=0, keepdims=True), axis_name) * num_prototypes)
    return q / (jnp.sum(q, axis=1, keepdims=True) * num_rows)

  q = jax.lax.fori_loop(0, num_iters, iteration, q)
  return q * num_rows
