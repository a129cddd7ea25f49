"""Frozen-encoder evaluation: weighted kNN and a linear probe on extracted features."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jax_ssl import data, diagnostics, losses, parallel
from jax_ssl.data import views as views_lib


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


def split_features(encode, config, source, split, mesh, max_examples=0):
  """(features, labels) of a split of `source`, as `extract_features` gives them."""
  batches = data.eval_batches(config.data, source, split,
                              local_batch_size=parallel.local_batch_size(config.eval.batch_size),
                              process_index=jax.process_index(),
                              process_count=jax.process_count())
  return extract_features(encode, batches, mesh, max_examples)


def _shard_rows(x, mesh):
  """Host rows -> a global array sharded over 'data', zero-padded to a multiple of devices."""
  rows = -(-x.shape[0] // mesh.size) * mesh.size
  padded = np.zeros((rows,) + x.shape[1:], x.dtype)
  padded[:x.shape[0]] = x
  sharding = NamedSharding(mesh, P(parallel.DATA_AXIS))
  return jax.make_array_from_callback(padded.shape, sharding, lambda index: padded[index])


@functools.partial(jax.jit, static_argnames=("k", "mesh"))
def _sharded_top_k(bank, valid, query_chunks, *, k, mesh):
  def per_device(bank, valid, chunks):
    offset = jax.lax.axis_index(parallel.DATA_AXIS) * bank.shape[0]

    def chunk_top_k(queries):
      sims = jnp.where(valid[None], queries @ bank.T, -jnp.inf)
      sims, index = jax.lax.top_k(sims, min(k, bank.shape[0]))
      # Each device sends only its k best candidates; the merge picks the global k best.
      sims, index = jax.lax.all_gather((sims, index + offset), parallel.DATA_AXIS, axis=1,
                                       tiled=True)
      sims, best = jax.lax.top_k(sims, k)
      return sims, jnp.take_along_axis(index, best, axis=1)

    return jax.lax.map(chunk_top_k, chunks)

  # After the all_gather every device holds the same merged result, which the
  # replication checker cannot see.
  return jax.shard_map(per_device, mesh=mesh, in_specs=(P(parallel.DATA_AXIS),) * 2 + (P(),),
                       out_specs=P(), check_vma=False)(bank, valid, query_chunks)


def nearest_neighbours(bank, queries, k, mesh=None, chunk=256):
  """Cosine similarities and bank indices of each query's k nearest rows, best first.

  The normalised bank is sharded over the devices of `mesh` ('data' axis): each device
  scores the queries against its rows and keeps its own top k, and only those k
  candidates are all-gathered and merged, so a device holds 1/devices of the bank
  and never a full similarity row: ImageNet-size banks fit.
  """
  mesh = mesh or parallel.make_mesh()
  bank = np.asarray(losses.l2_normalize(jnp.asarray(bank, jnp.float32)))
  queries = np.asarray(losses.l2_normalize(jnp.asarray(queries, jnp.float32)))
  k, chunk = min(k, bank.shape[0]), min(chunk, queries.shape[0])
  padded = -queries.shape[0] % chunk
  chunks = np.pad(queries, ((0, padded), (0, 0))).reshape(-1, chunk, queries.shape[1])
  sims, index = _sharded_top_k(_shard_rows(bank, mesh),
                               _shard_rows(np.ones(bank.shape[0], bool), mesh),
                               jnp.asarray(chunks), k=k, mesh=mesh)
  sims, index = (np.asarray(x).reshape(-1, k)[:queries.shape[0]] for x in (sims, index))
  return sims, index


def knn_accuracies(train_features, train_labels, test_features, test_labels, num_classes, *,
                   ks=(20, 200), temperature=0.07, mesh=None, chunk=256):
  """{k: top-1} of weighted kNN (Wu et al. 2018): the k nearest training examples by
  cosine similarity vote for their class with weight exp(sim / T). One search serves all k."""
  sims, index = nearest_neighbours(train_features, test_features, max(ks), mesh, chunk)
  neighbour_labels = np.asarray(train_labels)[index]
  accuracies = {}
  for k in ks:
    weights = np.exp(sims[:, :k] / temperature)
    votes = np.zeros((len(sims), num_classes))
    np.add.at(votes, (np.arange(len(sims))[:, None], neighbour_labels[:, :k]), weights)
    accuracies[k] = float(np.mean(np.argmax(votes, axis=1) == np.asarray(test_labels)))
  return accuracies


def knn_top1(train_features, train_labels, test_features, test_labels, num_classes, *,
             k=200, temperature=0.07, mesh=None, chunk=256):
  """Top-1 of weighted kNN with one k; see `knn_accuracies`."""
  return knn_accuracies(train_features, train_labels, test_features, test_labels, num_classes,
                        ks=(k,), temperature=temperature, mesh=mesh, chunk=chunk)[k]


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


def linear_probe_accuracies(train_features, train_labels, test_features, test_labels,
                            num_classes, *, epochs=100, lr=1e-2, weight_decay=1e-4,
                            batch_size=256, seed=0, ks=(1, 5)):
  """{k: top-k} of a softmax classifier trained on standardised frozen features (the fast
  protocol: features extracted once, without augmentation)."""
  train_x, test_x = _standardize(np.asarray(train_features, np.float32),
                                 np.asarray(test_features, np.float32))
  batch_size = min(batch_size, len(train_x))
  params = _train_linear(jnp.asarray(train_x), jnp.asarray(train_labels), jax.random.key(seed),
                         num_classes=num_classes, epochs=epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay)
  logits = test_x @ np.asarray(params["w"]) + np.asarray(params["b"])
  return topk_accuracies(logits, test_labels, ks)


def linear_probe_top1(*args, **kwargs):
  return linear_probe_accuracies(*args, ks=(1,), **kwargs)[1]


def topk_accuracies(logits, labels, ks=(1, 5)):
  """{k: fraction of rows whose label is among the k largest logits}."""
  ranked = np.argsort(-np.asarray(logits), axis=-1)
  hits = ranked == np.asarray(labels)[:, None]
  return {k: float(np.mean(hits[:, :k].any(axis=1))) for k in ks}


def knn_ks(eval_config):
  """The standard k of 20 and 200, and the config's own."""
  return tuple(sorted({20, 200, eval_config.knn_k}))


def positive_pairs(batch, data_config):
  """Two augmentations of the same images from a pretraining batch, or None if it has no
  two: the first two views at config.data.image_size without a transform, in view-group
  order ('view1' and 'view2'; multi-crop's first two global crops)."""
  picks = []
  for group in views_lib.view_groups(data_config):
    if group.size == data_config.image_size and not group.transform:
      picks += [(group.name, i if group.stacked else None) for i in range(group.count)]
  return _pick_pair(batch, tuple(picks[:2])) if len(picks) >= 2 else None


# Jitted, so it also slices global arrays that span several processes.
@functools.partial(jax.jit, static_argnums=1)
def _pick_pair(batch, picks):
  first, second = (batch[name] if i is None else batch[name][:, i] for name, i in picks)
  return {"view1": first, "view2": second}


def evaluate_encoder(encode, config, source, mesh, prefix="", pairs=None):
  """kNN, fast linear probe and diagnostics of the encoder on the labelled splits.

  `pairs`, a batch with 'view1' and 'view2' (two augmentations of the same images, see
  `positive_pairs`), adds the alignment diagnostic.
  """
  e = config.eval
  train_x, train_y = split_features(encode, config, source, "train", mesh, e.max_train_examples)
  test_x, test_y = split_features(encode, config, source, "test", mesh)
  knn = knn_accuracies(train_x, train_y, test_x, test_y, source.num_classes, ks=knn_ks(e),
                       temperature=e.knn_temperature, mesh=mesh)
  linear = linear_probe_accuracies(
      train_x, train_y, test_x, test_y, source.num_classes, epochs=e.linear_epochs,
      lr=e.linear_lr, weight_decay=e.linear_weight_decay, batch_size=e.linear_batch_size)
  results = {"knn_top1": knn[e.knn_k], **{f"knn_top1_k{k}": v for k, v in knn.items()},
             "linear_top1": linear[1], "linear_top5": linear[5],
             "uniformity": diagnostics.uniformity(test_x[:e.diagnostic_examples]),
             "effective_rank": diagnostics.effective_rank(test_x)}
  if pairs is not None:
    view1, view2 = jax.device_get((encode(pairs["view1"]), encode(pairs["view2"])))
    results["alignment"] = diagnostics.alignment(view1, view2)
  return {prefix + k: v for k, v in results.items()}


# ---------------------------------------------------- features by example ----
_SCATTERS = {}


def _scatter_rows(mesh):
  """A jitted (bank, valid, features, index, mask) -> (bank, valid) with rows `index` of
  the unmasked examples set, keeping the bank sharded over 'data'."""
  if mesh not in _SCATTERS:
    sharding = parallel.batch_sharding(mesh)

    def scatter(bank, valid, features, index, mask):
      index = jnp.where(mask, index, bank.shape[0])  # past the end: dropped
      return (bank.at[index].set(features.astype(bank.dtype), mode="drop"),
              valid.at[index].set(True, mode="drop"))

    _SCATTERS[mesh] = jax.jit(scatter, donate_argnums=(0, 1),
                              out_shardings=(sharding, sharding))
  return _SCATTERS[mesh]


def _empty_rows(rows, dim, mesh):
  sharding = parallel.batch_sharding(mesh)
  make = jax.jit(lambda: (jnp.zeros((rows, dim), jnp.float32), jnp.zeros((rows,), bool)),
                 out_shardings=(sharding, sharding))
  return make()


def features_by_index(encode, config, source, mesh):
  """Features of the whole training split in index order, kept on the devices.

  Returns (features [N', F] float32, valid [N'] bool), both sharded by rows over 'data':
  row i holds the example whose `index` is i; N' is the split's size rounded up to a
  multiple of the devices, and rows that no example filled are zero and invalid. For
  methods' epoch-start hooks (k-means over the training split): no host holds more than
  its batch.
  """
  rows = -(-source.num_train // mesh.size) * mesh.size
  batches = data.eval_batches(config.data, source, "train",
                              local_batch_size=parallel.local_batch_size(config.eval.batch_size),
                              process_index=jax.process_index(),
                              process_count=jax.process_count())
  scatter = _scatter_rows(mesh)
  bank = valid = None
  for local in batches:
    batch = parallel.global_batch(local, mesh)
    features = encode(batch["image"])
    if bank is None:
      bank, valid = _empty_rows(rows, features.shape[1], mesh)
    bank, valid = scatter(bank, valid, features, batch["index"], batch["mask"])
  return bank, valid
