"""Representation diagnostics that need no labels.

alignment and uniformity (Wang & Isola 2020) of l2-normalised embeddings: how close the
two views of an image land, and how evenly the embeddings spread over the sphere
(lower is better for both); effective rank (Roy & Vetterli 2007) of the features: how
many dimensions they really use, exp of the entropy of the normalised singular values
(1 when collapsed to a line, up to the feature dimension).
"""
import numpy as np


def _normalize(x):
  x = np.asarray(x, np.float64)
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def alignment(view1, view2, alpha=2):
  """E ||f(x) - f(x')||^alpha over positive pairs (row i of each view)."""
  return float(np.mean(np.linalg.norm(_normalize(view1) - _normalize(view2), axis=-1) ** alpha))


def uniformity(embeddings, t=2.0):
  """log E exp(-t ||f(x) - f(y)||^2) over distinct pairs."""
  z = _normalize(embeddings)
  squared = np.maximum(2.0 - 2.0 * z @ z.T, 0.0)  # unit vectors: |a - b|^2 = 2 - 2 a.b
  upper = np.triu_indices(len(z), k=1)
  return float(np.log(np.mean(np.exp(-t * squared[upper]))))


def effective_rank(features):
  singular = np.linalg.svd(np.asarray(features, np.float64), compute_uv=False)
  p = singular / singular.sum()
  p = p[p > 0]
  return float(np.exp(-np.sum(p * np.log(p))))
