"""kNN and linear probe against direct NumPy computations."""
import numpy as np
import pytest

from jax_ssl import evaluate


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


@pytest.mark.parametrize("k", [1, 5, 20])
def test_knn_matches_numpy(k):
  rng = np.random.default_rng(0)
  centers = rng.normal(size=(4, 8))
  train_y = rng.integers(0, 4, 120)
  test_y = rng.integers(0, 4, 50)
  train_x = centers[train_y] + 1.2 * rng.normal(size=(120, 8))
  test_x = centers[test_y] + 1.2 * rng.normal(size=(50, 8))
  expected = np.mean(numpy_weighted_knn(train_x, train_y, test_x, 4, k, 0.07) == test_y)
  got = evaluate.knn_top1(train_x, train_y, test_x, test_y, 4, k=k, temperature=0.07, chunk=16)
  assert got == pytest.approx(expected)
  assert 0.4 < got < 1.0  # the data is learnable but not trivially


def test_knn_k_larger_than_bank_uses_the_whole_bank():
  x = np.eye(3, dtype=np.float32)
  assert evaluate.knn_top1(x, np.arange(3), x, np.arange(3), 3, k=200) == 1.0


def test_linear_probe_separates_linear_data_and_not_noise():
  rng = np.random.default_rng(1)
  w = rng.normal(size=(16, 5))
  train_x, test_x = rng.normal(size=(600, 16)), rng.normal(size=(200, 16))
  train_y, test_y = np.argmax(train_x @ w, 1), np.argmax(test_x @ w, 1)
  accuracy = evaluate.linear_probe_top1(train_x, train_y, test_x, test_y, 5, epochs=50, lr=0.05)
  assert accuracy > 0.9
  shuffled = evaluate.linear_probe_top1(train_x, rng.permutation(train_y), test_x, test_y, 5,
                                        epochs=50, lr=0.05)
  assert shuffled < 0.45


def test_sharded_nearest_neighbours_match_a_full_sort():
  """203 bank rows over 8 devices: uneven shards, and k larger than a device's rows."""
  rng = np.random.default_rng(2)
  bank, queries = rng.normal(size=(203, 6)), rng.normal(size=(37, 6))
  sims, index = evaluate.nearest_neighbours(bank, queries, k=40, chunk=16)
  unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
  full = unit(queries) @ unit(bank).T
  np.testing.assert_array_equal(index, np.argsort(-full, axis=1)[:, :40])
  np.testing.assert_allclose(sims, np.take_along_axis(full, index, 1), atol=1e-5)


def test_knn_votes_on_hand_made_features():
  """Class 0 points along x, class 1 along y; the query near x has 20 class-0 neighbours
  at k=20, but at k=200 the 150 class-1 points outvote the 50 class-0 ones."""
  angles0 = np.linspace(-0.3, 0.3, 50)
  angles1 = np.pi / 2 + np.linspace(-0.6, 0.6, 150)
  bank = np.concatenate([np.stack([np.cos(a), np.sin(a)], 1) for a in (angles0, angles1)])
  labels = np.array([0] * 50 + [1] * 150)
  query = np.array([[1.0, 0.05]])
  accuracies = evaluate.knn_accuracies(bank, labels, query, np.array([0]), 2, ks=(20, 200),
                                       temperature=10.0)  # a flat vote: counts decide
  assert accuracies == {20: 1.0, 200: 0.0}
  sharp = evaluate.knn_accuracies(bank, labels, query, np.array([0]), 2, ks=(200,),
                                  temperature=0.07)  # exp(cos / 0.07): the close ones win
  assert sharp == {200: 1.0}


def test_linear_probe_reaches_100_percent_on_separable_features():
  rng = np.random.default_rng(3)
  labels = rng.integers(0, 10, 500)
  features = rng.normal(size=(500, 32)) * 0.1
  features[np.arange(500), labels] += 1.0  # each class owns a coordinate
  accuracies = evaluate.linear_probe_accuracies(features[:400], labels[:400], features[400:],
                                                labels[400:], 10, epochs=20, lr=0.05,
                                                batch_size=40)
  assert accuracies == {1: 1.0, 5: 1.0}


def test_diagnostics_known_values():
  from jax_ssl import diagnostics  # noqa: PLC0415

  x = np.random.default_rng(4).normal(size=(64, 8))
  assert diagnostics.alignment(x, 3 * x) == pytest.approx(0.0, abs=1e-12)
  assert diagnostics.alignment(x, -x) == pytest.approx(4.0)  # antipodal: |2z|^2
  assert diagnostics.uniformity(np.ones((10, 3))) == pytest.approx(0.0, abs=1e-12)
  # Two antipodal points: the one pair is at squared distance 4.
  assert diagnostics.uniformity(np.array([[1.0, 0], [-1.0, 0]])) == pytest.approx(-8.0)
  assert diagnostics.effective_rank(np.eye(6)) == pytest.approx(6.0)
  assert diagnostics.effective_rank(np.outer(np.arange(1, 9), np.ones(5))) == pytest.approx(1.0)
