"""k-means on the devices: Lloyd's iterations on features sharded by rows, under jit.

Every step is row-parallel (distances to the centroids, assignments) or a sum over rows
(the centroids' new sums and counts), which XLA turns into a per-device sum and an
all-reduce when the rows are sharded over 'data'; nothing gathers the features. The result
is the same on one device and on many, up to float rounding of those sums.

Spherical k-means (DeepCluster v2: unit features, cosine similarity, unit centroids) or
Euclidean (DeepCluster v1); k-means++ or random initial centroids drawn from the key; a
cluster left empty is re-seeded with the valid row farthest from its centroid, so every
cluster ends an iteration with a member (faiss splits a large cluster instead).
"""
import functools

import jax
import jax.numpy as jnp

INITS = ("kmeans++", "random")


def _normalise(x):
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, -1, keepdims=True), 1e-12))


def _distances(features, centroids, spherical):
  """[N, K]: 1 - cosine for spherical k-means, the squared distance otherwise."""
  if spherical:
    return 1.0 - features @ centroids.T
  return (jnp.sum(features ** 2, -1, keepdims=True) - 2 * features @ centroids.T
          + jnp.sum(centroids ** 2, -1)[None])


def _random_rows(key, valid, count):
  """`count` distinct valid rows, uniformly (Gumbel top-k)."""
  noise = jax.random.gumbel(key, valid.shape)
  return jax.lax.top_k(jnp.where(valid, noise, -jnp.inf), count)[1]


def _kmeans_plus_plus(key, features, valid, num_clusters, spherical):
  """Arthur & Vassilvitskii (2007): each next centroid a valid row drawn with probability
  proportional to its distance to the nearest centroid so far."""
  first_key, key = jax.random.split(key)
  first = _random_rows(first_key, valid, 1)[0]
  centroids = jnp.zeros((num_clusters, features.shape[-1]), features.dtype)
  centroids = centroids.at[0].set(features[first])
  nearest = jnp.maximum(_distances(features, centroids[:1], spherical)[:, 0], 0.0)

  def add(i, carry):
    centroids, nearest = carry
    logits = jnp.where(valid & (nearest > 0), jnp.log(jnp.maximum(nearest, 1e-30)), -jnp.inf)
    # all valid rows already centroids (duplicates): fall back to a uniform draw
    logits = jnp.where(jnp.any(jnp.isfinite(logits)), logits, jnp.where(valid, 0.0, -jnp.inf))
    row = jax.random.categorical(jax.random.fold_in(key, i), logits)
    centroids = centroids.at[i].set(features[row])
    distance = jnp.maximum(_distances(features, features[row][None], spherical)[:, 0], 0.0)
    return centroids, jnp.minimum(nearest, distance)

  centroids, _ = jax.lax.fori_loop(1, num_clusters, add, (centroids, nearest))
  return centroids


@functools.partial(jax.jit, static_argnames=("num_clusters", "iterations", "init",
                                              "spherical"))
def kmeans(features, valid, key, num_clusters, iterations=10, init="kmeans++",
           spherical=True, centroids=None):
  """Clusters the valid rows of `features` [N, F] (valid [N] bool; rows may be sharded).

  Returns (centroids [K, F], assignments [N] int32 with -1 for invalid rows, counts [K]).
  `centroids`, when given, replaces the initialisation. Spherical k-means normalises the
  features and keeps unit centroids.
  """
  if init not in INITS:
    raise ValueError(f"k-means init {init!r} is unknown; expected one of {INITS}")
  features = features.astype(jnp.float32)
  if spherical:
    features = _normalise(features)
  valid = valid.astype(bool)
  if centroids is None:
    if init == "kmeans++":
      centroids = _kmeans_plus_plus(key, features, valid, num_clusters, spherical)
    else:
      centroids = features[_random_rows(key, valid, num_clusters)]
  centroids = centroids.astype(jnp.float32)

  def assign(centroids):
    distances = _distances(features, centroids, spherical)
    return jnp.argmin(distances, axis=1), jnp.min(distances, axis=1)

  def step(_, centroids):
    assignments, distances = assign(centroids)
    one_hot = jax.nn.one_hot(assignments, num_clusters) * valid[:, None]
    counts = one_hot.sum(0)
    means = (one_hot.T @ features) / jnp.maximum(counts, 1.0)[:, None]
    means = _normalise(means) if spherical else means
    # Each empty cluster takes one of the valid rows farthest from their centroids.
    empty = counts == 0
    far = jax.lax.top_k(jnp.where(valid, distances, -jnp.inf), num_clusters)[1]
    seeds = features[far[jnp.cumsum(empty) - 1]]
    return jnp.where(empty[:, None], seeds, means)

  centroids = jax.lax.fori_loop(0, iterations, step, centroids)
  assignments, _ = assign(centroids)
  counts = (jax.nn.one_hot(assignments, num_clusters) * valid[:, None]).sum(0)
  return centroids, jnp.where(valid, assignments, -1).astype(jnp.int32), counts
