"""Representation diagnostics that need no labels, on arrays sharded over any mesh.

alignment and uniformity (Wang & Isola 2020) of l2-normalised embeddings: how close the
two views of an image land, and how evenly the embeddings spread over the sphere
(lower is better for both); effective rank (Roy & Vetterli 2007) of the features: how
many dimensions they really use, exp of the entropy of the normalised singular values
(1 when collapsed to a line, up to the feature dimension).

They compute in float32 on the devices that hold the arrays; only scalars, and for the
effective rank the [F, F] Gram matrix, come back to the host.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jax_ssl import losses, parallel


def chunked_sum(fn, x, mask, chunk=4096):
  """The sum of fn(rows of x as float32, their mask) over blocks of at most `chunk` rows,
  so that fn's temporaries never take the size of x. Local: call it inside shard_map."""
  rows = x.shape[0]
  size = min(chunk, rows)
  block = (jax.ShapeDtypeStruct((size,) + x.shape[1:], jnp.float32),
           jax.ShapeDtypeStruct((size,), jnp.bool_))
  zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn, *block))

  def body(i, total):
    start = jnp.minimum(i * size, rows - size)  # the last block ends at the last row...
    xs = jax.lax.dynamic_slice_in_dim(x, start, size).astype(jnp.float32)
    ms = jax.lax.dynamic_slice_in_dim(mask, start, size)
    ms &= start + jnp.arange(size) >= i * size  # ...and counts the rows it shares once
    return jax.tree.map(jnp.add, total, fn(xs, ms))

  return jax.lax.fori_loop(0, -(-rows // size), body, zero)


@functools.partial(jax.jit, static_argnames="alpha")
def _alignment(view1, view2, alpha):
  distance = jnp.linalg.norm(losses.l2_normalize(view1) - losses.l2_normalize(view2), axis=-1)
  return jnp.mean(distance ** alpha)


def alignment(view1, view2, alpha=2):
  """E ||f(x) - f(x')||^alpha over positive pairs (row i of each view)."""
  return float(_alignment(view1, view2, alpha))


@functools.partial(jax.jit, static_argnames="t")
def _uniformity(embeddings, mask, t):
  z = losses.l2_normalize(embeddings)
  squared = jnp.maximum(2.0 - 2.0 * z @ z.T, 0.0)  # unit vectors: |a - b|^2 = 2 - 2 a.b
  rows = jnp.arange(z.shape[0])
  pairs = mask[:, None] & mask[None, :] & (rows[:, None] < rows[None, :])
  return jnp.log(jnp.sum(jnp.where(pairs, jnp.exp(-t * squared), 0.0)) / jnp.sum(pairs))


def uniformity(embeddings, mask=None, t=2.0):
  """log E exp(-t ||f(x) - f(y)||^2) over distinct pairs of the rows where `mask`."""
  mask = jnp.ones(embeddings.shape[0], bool) if mask is None else mask
  return float(_uniformity(embeddings, mask, t))


def _mesh_of(x):
  sharding = getattr(x, "sharding", None)
  if isinstance(sharding, NamedSharding):
    return sharding.mesh
  return parallel.make_mesh(jax.devices()[:1])


@functools.partial(jax.jit, static_argnames="mesh")
def _centred_gram(x, mask, *, mesh):
  def per_device(x, mask):
    def total(fn):
      return jax.lax.psum(chunked_sum(fn, x, mask), parallel.DATA_AXIS)

    count = jax.lax.psum(jnp.sum(mask), parallel.DATA_AXIS)
    mean = total(lambda xs, ms: jnp.sum(jnp.where(ms[:, None], xs, 0), 0)) / count
    centred = lambda xs, ms: jnp.where(ms[:, None], xs - mean, 0)
    return count, mean, total(lambda xs, ms: centred(xs, ms).T @ centred(xs, ms))

  rows = P(parallel.DATA_AXIS)
  return jax.shard_map(per_device, mesh=mesh, in_specs=(rows, rows), out_specs=P(),
                       check_vma=False)(x, mask)


def effective_rank(features, mask=None):
  """exp(entropy of the normalised singular values) of the rows where `mask`.

  The singular values are the square roots of the eigenvalues of X^T X = C + n m m^T,
  assembled in float64 from the float32 Gram matrix C of the centred rows and their mean
  m: centring keeps the features' large common offset (ReLU features are all positive)
  from drowning the spread in float32 rounding (then within 1e-4 of float64's SVD on
  ReLU-like features).
  """
  mask = jnp.ones(features.shape[0], bool) if mask is None else mask
  count, mean, centred = (np.asarray(a, np.float64) for a in
                          _centred_gram(features, mask, mesh=_mesh_of(features)))
  eigenvalues = np.linalg.eigvalsh(centred + count * np.outer(mean, mean))
  singular = np.sqrt(np.maximum(eigenvalues, 0))  # rounding makes the smallest negative
  p = singular / singular.sum()
  p = p[p > 0]
  return float(np.exp(-np.sum(p * np.log(p))))
