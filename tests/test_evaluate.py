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
