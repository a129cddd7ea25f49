"""kNN, linear probe and diagnostics on sharded features against direct host computations,
on 8 devices and on 1."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jax_ssl import diagnostics, evaluate, parallel

MESHES = {"8 devices": lambda: parallel.make_mesh(),
          "1 device": lambda: parallel.make_mesh(jax.devices()[:1])}


def numpy_weighted_knn(train_x, train_y, test_x, num_classes, k, temperature):
  train_x = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
  test_x = test_x / np.linalg.norm(test_x, axis=1, keepdims=True)
  preds = []
  for q in test_x:
    sims = train_x @ q
    top = np.argsort(-sims)[:k]
    votes = np.zeros(num_classes)
    for i in top:
      votes[train_y[i]] += np.exp(sims[i] / temperature)
    preds.append(np.argmax(votes))
  return np.array(preds)


@functools.partial(jax.jit, static_argnames=("num_classes", "epochs", "batch_size"))
def host_linear_probe(x, y, key, *, num_classes, epochs, batch_size, lr, weight_decay):
  """The probe as it ran before features were sharded: all rows in one array, in order."""
  n, dim = x.shape
  steps_per_epoch = n // batch_size
  tx = optax.adamw(optax.cosine_decay_schedule(lr, epochs * steps_per_epoch),
                   weight_decay=weight_decay)
  params = {"w": jnp.zeros((dim, num_classes)), "b": jnp.zeros((num_classes,))}

  def loss_fn(p, xb, yb):
    return optax.softmax_cross_entropy_with_integer_labels(xb @ p["w"] + p["b"], yb).mean()

  def step(carry, idx):
    p, opt_state = carry
    updates, opt_state = tx.update(jax.grad(loss_fn)(p, x[idx], y[idx]), opt_state, p)
    return (optax.apply_updates(p, updates), opt_state), None

  def epoch(carry, epoch_key):
    order = jax.random.permutation(epoch_key, n)[:steps_per_epoch * batch_size]
    return jax.lax.scan(step, carry, order.reshape(steps_per_epoch, batch_size))

  (params, _), _ = jax.lax.scan(epoch, (params, tx.init(params)), jax.random.split(key, epochs))
  return params


def host_probe_logits(train_x, train_y, test_x, num_classes, **kwargs):
  mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
  params = host_linear_probe(jnp.asarray((train_x - mean) / std), jnp.asarray(train_y),
                             jax.random.key(0), num_classes=num_classes, **kwargs)
  return (test_x - mean) / std @ np.asarray(params["w"]) + np.asarray(params["b"])


def clusters(seed, n_train=120, n_test=50, dim=8, classes=4, spread=1.2):
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(classes, dim))
  train_y, test_y = rng.integers(0, classes, n_train), rng.integers(0, classes, n_test)
  train_x = centers[train_y] + spread * rng.normal(size=(n_train, dim))
  test_x = centers[test_y] + spread * rng.normal(size=(n_test, dim))
  return (train_x.astype(np.float32), train_y, test_x.astype(np.float32), test_y)


def sharded(mesh, *arrays):
  """Features of (x, y) pairs."""
  return [evaluate.from_host(x, y, mesh) for x, y in zip(arrays[::2], arrays[1::2])]


@pytest.mark.parametrize("mesh", MESHES)
def test_knn_matches_numpy(mesh):
  train_x, train_y, test_x, test_y = clusters(0)
  train, test = sharded(MESHES[mesh](), train_x, train_y, test_x, test_y)
  got = evaluate.knn_accuracies(train, test, 4, ks=(1, 5, 20), temperature=0.07, chunk=16)
  for k in (1, 5, 20):
    expected = np.mean(numpy_weighted_knn(train_x, train_y, test_x, 4, k, 0.07) == test_y)
    assert got[k] == pytest.approx(expected)
  assert 0.4 < got[20] < 1.0  # the data is learnable but not trivially


def test_knn_k_larger_than_bank_uses_the_whole_bank():
  x = np.eye(3, dtype=np.float32)
  bank, = sharded(parallel.make_mesh(), x, np.arange(3))
  assert evaluate.knn_top1(bank, bank, 3, k=200) == 1.0


@pytest.mark.parametrize("mesh,tile", [("8 devices", 16384), ("8 devices", 5), ("1 device", 7)])
def test_sharded_nearest_neighbours_match_a_full_sort(mesh, tile):
  """203 bank rows over 8 devices: uneven shards, k larger than a device's rows; the bank
  scored whole or a few rows at a time (the last tile overlapping the one before)."""
  rng = np.random.default_rng(2)
  bank_x, queries_x = rng.normal(size=(203, 6)), rng.normal(size=(37, 6))
  bank, queries = sharded(MESHES[mesh](), bank_x, np.arange(203) % 5, queries_x, np.zeros(37))
  sims, labels, index = (np.asarray(x)[:37] for x in
                         evaluate.nearest_neighbours(bank, queries, k=40, chunk=16, tile=tile))
  unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
  full = unit(queries_x) @ unit(bank_x).T
  np.testing.assert_array_equal(index, np.argsort(-full, axis=1)[:, :40])
  np.testing.assert_array_equal(labels, index % 5)
  np.testing.assert_allclose(sims, np.take_along_axis(full, index, 1), atol=1e-5)


def test_knn_votes_on_hand_made_features():
  """Class 0 points along x, class 1 along y; the query near x has 20 class-0 neighbours
  at k=20, but at k=200 the 150 class-1 points outvote the 50 class-0 ones."""
  angles0 = np.linspace(-0.3, 0.3, 50)
  angles1 = np.pi / 2 + np.linspace(-0.6, 0.6, 150)
  bank_x = np.concatenate([np.stack([np.cos(a), np.sin(a)], 1) for a in (angles0, angles1)])
  bank, query = sharded(parallel.make_mesh(), bank_x, np.array([0] * 50 + [1] * 150),
                        np.array([[1.0, 0.05]]), np.array([0]))
  accuracies = evaluate.knn_accuracies(bank, query, 2, ks=(20, 200),
                                       temperature=10.0)  # a flat vote: counts decide
  assert accuracies == {20: 1.0, 200: 0.0}
  sharp = evaluate.knn_accuracies(bank, query, 2, ks=(200,),
                                  temperature=0.07)  # exp(cos / 0.07): the close ones win
  assert sharp == {200: 1.0}


def test_linear_probe_separates_linear_data_and_not_noise():
  rng = np.random.default_rng(1)
  w = rng.normal(size=(16, 5))
  train_x, test_x = rng.normal(size=(600, 16)), rng.normal(size=(200, 16))
  train_y, test_y = np.argmax(train_x @ w, 1), np.argmax(test_x @ w, 1)
  mesh = parallel.make_mesh()
  train, test, shuffled = sharded(mesh, train_x, train_y, test_x, test_y, train_x,
                                  rng.permutation(train_y))
  assert evaluate.linear_probe_top1(train, test, 5, epochs=50, lr=0.05) > 0.9
  assert evaluate.linear_probe_top1(shuffled, test, 5, epochs=50, lr=0.05) < 0.45


@pytest.mark.parametrize("mesh", MESHES)
def test_sharded_linear_probe_trains_as_the_host_probe_did(mesh):
  """The same batches in the same order as the whole-array probe: the same classifier to
  float rounding (the mean and std are summed in another order), so the same predictions."""
  train_x, train_y, test_x, test_y = clusters(5, n_train=203, n_test=61, dim=12, spread=1.5)
  settings = dict(epochs=7, batch_size=32, lr=0.05, weight_decay=1e-4)
  logits = host_probe_logits(train_x, train_y, test_x, 4, **settings)
  expected = {k: float(np.mean((np.argsort(-logits, 1)[:, :k] == test_y[:, None]).any(1)))
              for k in (1, 2)}
  train, test = sharded(MESHES[mesh](), train_x, train_y, test_x, test_y)
  got = evaluate.linear_probe_accuracies(train, test, 4, ks=(1, 2), **settings)
  assert got == expected and 0.5 < got[1] < 0.95


def test_linear_probe_reaches_100_percent_on_separable_features():
  rng = np.random.default_rng(3)
  labels = rng.integers(0, 10, 500)
  x = rng.normal(size=(500, 32)) * 0.1
  x[np.arange(500), labels] += 1.0  # each class owns a coordinate
  train, test = sharded(parallel.make_mesh(), x[:400], labels[:400], x[400:], labels[400:])
  accuracies = evaluate.linear_probe_accuracies(train, test, 10, epochs=20, lr=0.05,
                                                batch_size=40)
  assert accuracies == {1: 1.0, 5: 1.0}


def test_positions_and_label_subsets_do_not_depend_on_the_layout():
  train_x, train_y, _, _ = clusters(6, n_train=90)
  subsets = []
  for make_mesh in MESHES.values():
    train, = sharded(make_mesh(), train_x, train_y)
    x, labels, found = evaluate.at_positions(train, np.array([0, 7, 89]))
    np.testing.assert_array_equal(x, train_x[[0, 7, 89]])
    np.testing.assert_array_equal(labels, train_y[[0, 7, 89]])
    assert np.all(found)
    subset = evaluate.label_subset(train, 0.25, seed=3)
    _, _, kept = evaluate.at_positions(subset, np.arange(90))
    subsets.append(np.asarray(kept))
  np.testing.assert_array_equal(subsets[0], subsets[1])
  assert 0.2 < subsets[0].mean() < 0.3


def numpy_alignment(view1, view2):
  unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
  return np.mean(np.sum((unit(view1) - unit(view2)) ** 2, -1))


def numpy_uniformity(x, t=2.0):
  z = x / np.linalg.norm(x, axis=-1, keepdims=True)
  squared = np.sum((z[:, None] - z[None]) ** 2, -1)
  return np.log(np.mean(np.exp(-t * squared[np.triu_indices(len(z), 1)])))


def numpy_effective_rank(x):
  singular = np.linalg.svd(np.asarray(x, np.float64), compute_uv=False)
  p = singular / singular.sum()
  return np.exp(-np.sum(p * np.log(p)))


@pytest.mark.parametrize("mesh", MESHES)
def test_sharded_diagnostics_match_float64_numpy(mesh):
  rng = np.random.default_rng(7)
  # ReLU-like features: a large common offset and a decaying spectrum.
  x = np.maximum(rng.normal(size=(301, 48)) * 0.9 ** np.arange(48) + 2.0, 0).astype(np.float32)
  noisy = x + 0.3 * rng.normal(size=x.shape).astype(np.float32)
  mesh = MESHES[mesh]()
  features, = sharded(mesh, x, np.zeros(301))  # padded to 304 rows, masked
  assert diagnostics.effective_rank(features.x, features.mask) == pytest.approx(
      numpy_effective_rank(x), rel=1e-4)
  view1, view2 = (jax.device_put(v[:296], parallel.batch_sharding(mesh)) for v in (x, noisy))
  assert diagnostics.alignment(view1, view2) == pytest.approx(
      numpy_alignment(x[:296], noisy[:296]), rel=1e-5)
  first, _, found = evaluate.at_positions(features, np.arange(100))
  assert diagnostics.uniformity(first, found) == pytest.approx(numpy_uniformity(x[:100]),
                                                               rel=1e-4)


def test_diagnostics_known_values():
  x = np.random.default_rng(4).normal(size=(64, 8))
  # float32 on the devices: zero and exact values to float32's rounding.
  assert diagnostics.alignment(x, 3 * x) == pytest.approx(0.0, abs=1e-6)
  assert diagnostics.alignment(x, -x) == pytest.approx(4.0)  # antipodal: |2z|^2
  assert diagnostics.uniformity(np.ones((10, 3))) == pytest.approx(0.0, abs=1e-6)
  # Two antipodal points: the one pair is at squared distance 4.
  assert diagnostics.uniformity(np.array([[1.0, 0], [-1.0, 0]])) == pytest.approx(-8.0)
  assert diagnostics.effective_rank(np.eye(6)) == pytest.approx(6.0)
  assert diagnostics.effective_rank(np.outer(np.arange(1, 9), np.ones(5))) == pytest.approx(1.0)
