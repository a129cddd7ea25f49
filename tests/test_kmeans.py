"""k-means on the devices: separated clusters recovered exactly, the same on 8 devices as
on 1, empty clusters re-seeded, invalid rows left out."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from jax_ssl import kmeans, parallel


def blobs(num_clusters=4, per_cluster=64, dim=8, spread=0.05, seed=0):
  """Points around orthogonal directions (far apart for both metrics), and their cluster."""
  rng = np.random.default_rng(seed)
  centres = 3.0 * np.eye(dim, dtype=np.float32)[:num_clusters]
  labels = np.repeat(np.arange(num_clusters), per_cluster)
  points = centres[labels] + spread * rng.standard_normal((len(labels), dim)).astype(np.float32)
  order = rng.permutation(len(labels))
  return points[order], labels[order]


def same_partition(a, b):
  """Whether two labellings group the rows alike, whatever the clusters' numbering."""
  pairs = set(zip(np.asarray(a).tolist(), np.asarray(b).tolist()))
  return len(pairs) == len(set(np.asarray(a).tolist())) == len(set(np.asarray(b).tolist()))


@pytest.mark.parametrize("spherical", [True, False])
@pytest.mark.parametrize("init", kmeans.INITS)
def test_well_separated_clusters_are_recovered_exactly(spherical, init):
  points, labels = blobs()
  valid = np.ones(len(points), bool)
  centroids, assignments, counts = kmeans.kmeans(
      points, valid, jax.random.key(0), num_clusters=4, init=init, spherical=spherical)
  assert same_partition(assignments, labels)
  np.testing.assert_array_equal(np.sort(np.asarray(counts)), [64] * 4)
  if spherical:
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, rtol=1e-5)


def test_eight_devices_give_what_one_device_gives():
  # Overlapping clusters: the result depends on every iteration, not just the first.
  points, _ = blobs(num_clusters=6, per_cluster=40, dim=6, spread=0.8, seed=1)
  valid = np.arange(len(points)) < 230  # the last rows are padding, as features_by_index's
  results = []
  for devices in (jax.devices()[:1], jax.devices()):
    mesh = parallel.make_mesh(devices)
    rows = NamedSharding(mesh, P("data"))
    results.append(jax.device_get(kmeans.kmeans(
        jax.device_put(points, rows), jax.device_put(valid, rows), jax.random.key(3),
        num_clusters=6, iterations=10)))
  (c1, a1, n1), (c8, a8, n8) = results
  assert len(jax.devices()) == 8
  np.testing.assert_array_equal(a1, a8)
  np.testing.assert_allclose(c1, c8, atol=1e-5)
  np.testing.assert_array_equal(n1, n8)
  assert np.all(a8[230:] == -1) and n8.sum() == 230


def test_an_empty_cluster_is_reseeded():
  a, b = np.eye(2, dtype=np.float32)
  points = np.stack([a] * 30 + [b] * 20)
  start = jnp.stack([a, a])  # two centroids on a: the second gets nothing at first
  centroids, assignments, counts = kmeans.kmeans(
      points, np.ones(50, bool), jax.random.key(0), num_clusters=2, iterations=2,
      spherical=False, centroids=start)
  np.testing.assert_array_equal(counts, [30, 20])
  np.testing.assert_allclose(centroids, [a, b])
  np.testing.assert_array_equal(assignments, [0] * 30 + [1] * 20)


def test_invalid_rows_neither_seed_nor_join_a_cluster():
  points, labels = blobs(num_clusters=3, per_cluster=20)
  far = np.full((10, points.shape[1]), 100.0, np.float32)  # would take a centroid if valid
  valid = np.arange(70) < 60
  for init in kmeans.INITS:
    centroids, assignments, _ = kmeans.kmeans(
        np.concatenate([points, far]), valid, jax.random.key(1), num_clusters=3, init=init,
        spherical=False)
    assert np.abs(np.asarray(centroids)).max() < 10
    assert np.all(np.asarray(assignments)[60:] == -1)
    assert same_partition(np.asarray(assignments)[:60], labels)
  with pytest.raises(ValueError, match="k-means init 'pp' is unknown"):
    kmeans.kmeans(points, np.ones(60, bool), jax.random.key(0), num_clusters=3, init="pp")
