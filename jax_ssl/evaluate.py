"""Frozen-encoder evaluation: weighted kNN and a linear probe on extracted features."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils

from jax_ssl import data, losses, parallel


def extract_features(encode, batches, mesh, max_examples=0):
  """Runs `encode` over eval batches; returns (features, labels) of every unmasked example.

  `encode(images) -> features` is jitted over the mesh. Every process gets the
  whole feature matrix, so each can run the (cheap) classifiers on its own.
  """
  features, labels = [], []
  seen = 0
  for local in batches:
    batch = parallel.global_batch(local, mesh)
    feats, labs, mask = multihost_utils.process_allgather(
        (encode(batch["image"]), batch["label"], batch["mask"]), tiled=True)
    features.append(np.asarray(feats)[mask])
    labels.append(np.asarray(labs)[mask])
    seen += int(mask.sum())
    if max_examples and seen >= max_examples:
      break
  features, labels = np.concatenate(features), np.concatenate(labels)
  if max_examples:
    features, labels = features[:max_examples], labels[:max_examples]
  return features, labels


@functools.partial(jax.jit, static_argnames=("num_classes", "k", "chunk"))
def _knn_predict(bank, bank_labels, queries, *, num_classes, k, temperature, chunk):
  def predict(q):
    sims, idx = jax.lax.top_k(q @ bank.T, k)
    votes = jax.nn.one_hot(bank_labels[idx], num_classes) * jnp.exp(sims / temperature)[..., None]
    return jnp.argmax(votes.sum(axis=1), axis=-1)

  padded = -queries.shape[0] % chunk
  q = jnp.pad(queries, ((0, padded), (0, 0))).reshape(-1, chunk, queries.shape[1])
  return jax.lax.map(predict, q).reshape(-1)[:queries.shape[0]]


def knn_top1(train_features, train_labels, test_features, test_labels, num_classes, *,
             k=200, temperature=0.07, chunk=256):
  """Weighted kNN (Wu et al. 2018): neighbours by cosine similarity vote exp(sim / T)."""
  bank = losses.l2_normalize(jnp.asarray(train_features))
  queries = losses.l2_normalize(jnp.asarray(test_features))
  k = min(k, bank.shape[0])
  pred = _knn_predict(bank, jnp.asarray(train_labels), queries, num_classes=num_classes, k=k,
                      temperature=temperature, chunk=min(chunk, queries.shape[0]))
  return float(np.mean(np.asarray(pred) == np.asarray(test_labels)))


def _standardize(train, test):
  mean, std = train.mean(axis=0), train.std(axis=0) + 1e-6
  return (train - mean) / std, (test - mean) / std


@functools.partial(jax.jit, static_argnames=("num_classes", "epochs", "batch_size"))
def _train_linear(x, y, key, *, num_classes, epochs, batch_size, lr, weight_decay):
  n, dim = x.shape
  steps_per_epoch = n // batch_size
  schedule = optax.cosine_decay_schedule(lr, epochs * steps_per_epoch)
  tx = optax.adamw(schedule, weight_decay=weight_decay)
  params = {"w": jnp.zeros((dim, num_classes)), "b": jnp.zeros((num_classes,))}

  def loss_fn(p, xb, yb):
    logits = xb @ p["w"] + p["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

  def step(carry, idx):
    p, opt_state = carry
    grads = jax.grad(loss_fn)(p, x[idx], y[idx])
    updates, opt_state = tx.update(grads, opt_state, p)
    return (optax.apply_updates(p, updates), opt_state), None

  def epoch(carry, epoch_key):
    order = jax.random.permutation(epoch_key, n)[:steps_per_epoch * batch_size]
    return jax.lax.scan(step, carry, order.reshape(steps_per_epoch, batch_size))

  (params, _), _ = jax.lax.scan(epoch, (params, tx.init(params)), jax.random.split(key, epochs))
  return params


def linear_probe_top1(train_features, train_labels, test_features, test_labels, num_classes, *,
                      epochs=100, lr=1e-2, weight_decay=1e-4, batch_size=256, seed=0):
  """Top-1 of a softmax classifier trained on standardised frozen features (fast protocol)."""
  train_x, test_x = _standardize(np.asarray(train_features, np.float32),
                                 np.asarray(test_features, np.float32))
  batch_size = min(batch_size, len(train_x))
  params = _train_linear(jnp.asarray(train_x), jnp.asarray(train_labels), jax.random.key(seed),
                         num_classes=num_classes, epochs=epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay)
  pred = np.argmax(test_x @ np.asarray(params["w"]) + np.asarray(params["b"]), axis=-1)
  return float(np.mean(pred == np.asarray(test_labels)))


def evaluate_encoder(encode, config, source, mesh, prefix=""):
  """kNN and linear-probe top-1 of the encoder on the source's labelled splits."""
  e = config.eval
  local_batch = parallel.local_batch_size(e.batch_size)

  def features(split, max_examples=0):
    batches = data.eval_batches(config.data, source, split, local_batch_size=local_batch,
                                process_index=jax.process_index(),
                                process_count=jax.process_count())
    return extract_features(encode, batches, mesh, max_examples)

  train_x, train_y = features("train", e.max_train_examples)
  test_x, test_y = features("test")
  knn = knn_top1(train_x, train_y, test_x, test_y, source.num_classes, k=e.knn_k,
                 temperature=e.knn_temperature)
  linear = linear_probe_top1(train_x, train_y, test_x, test_y, source.num_classes,
                             epochs=e.linear_epochs, lr=e.linear_lr,
                             weight_decay=e.linear_weight_decay, batch_size=e.linear_batch_size)
  return {f"{prefix}knn_top1": knn, f"{prefix}linear_top1": linear}



