"""Frozen-encoder evaluation: weighted kNN, a linear probe and diagnostics on features that
stay on the devices that computed them.

`split_features` runs an encoder over a split and leaves each device's rows where they are:
a `Features` of global arrays sharded over the mesh's 'data' axis. kNN, the fast linear
probe and the diagnostics run on these under jit, so no process ever holds more than its
share of the features (ImageNet's 1.28M x 2048 is 10 GB in all), and only scalars and the
k nearest neighbours of queries cross devices, through collectives that work on any number
of processes. Rows are in no particular order: what depends on order (the probe's batches,
the diagnostics' first examples) goes by each example's position in its split, so 1 or 8
devices, 1 or 2 processes give the same results.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import PartitionSpec as P

from jax_ssl import data, diagnostics, losses, parallel
from jax_ssl.data import views as views_lib

ROWS = P(parallel.DATA_AXIS)
NEVER = np.iinfo(np.int32).max  # a rank or slot no row has


@dataclasses.dataclass(frozen=True)
class Features:
  """Per-example rows of a split, as global arrays sharded over 'data' (rows in any order).

  `index` is the example's position in its split, -1 for padding; `mask` marks real
  examples (not padding, not an image that failed to decode, not left out of a subset).
  `skipped` names the split's examples that failed to decode.
  """
  x: jax.Array       # [rows, F]
  label: jax.Array   # [rows] int32
  index: jax.Array   # [rows] int32
  mask: jax.Array    # [rows] bool
  skipped: tuple = ()

  @property
  def mesh(self):
    return self.x.sharding.mesh


def from_host(x, labels, mesh=None):
  """Features of host arrays (the same whole arrays on every process): row i is example i."""
  mesh = mesh or parallel.make_mesh()
  x, labels = np.asarray(x, np.float32), np.asarray(labels, np.int32)
  n = len(x)
  rows = -(-n // mesh.size) * mesh.size

  def place(values, fill):
    padded = np.full((rows,) + values.shape[1:], fill, values.dtype)
    padded[:n] = values
    return jax.make_array_from_callback(padded.shape, parallel.batch_sharding(mesh),
                                        lambda index: padded[index])

  return Features(place(x, 0), place(labels, 0), place(np.arange(n, dtype=np.int32), -1),
                  place(np.ones(n, bool), False))


# ------------------------------------------------------------- extraction ----
@functools.partial(jax.jit, static_argnames=("rows", "mesh"))
def _empty(batch, *, rows, mesh):
  """Zeros for `rows` rows of each of `batch`'s arrays, made sharded over the mesh."""
  return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(
      jnp.zeros((rows,) + x.shape[1:], x.dtype), parallel.batch_sharding(mesh)), batch)


@functools.partial(jax.jit, static_argnames="mesh", donate_argnums=0)
def _write(buffers, batch, j, *, mesh):
  """Each device writes its rows of batch j after its rows of the batches before: no row
  moves between devices."""
  def local(buffers, batch, j):
    return jax.tree.map(lambda buffer, rows: jax.lax.dynamic_update_slice_in_dim(
        buffer, rows.astype(buffer.dtype), j * rows.shape[0], 0), buffers, batch)

  return jax.shard_map(local, mesh=mesh, in_specs=(ROWS, ROWS, P()), out_specs=ROWS)(
      buffers, batch, j)


def extract_features(encode, batches, mesh, num_batches):
  """Features of `num_batches` eval batches (data.eval_batches): `encode(images) ->
  features`, jitted over the mesh, and the batches' labels, positions and masks."""
  buffers = None
  for j, local in enumerate(batches):
    batch = parallel.global_batch(local, mesh)
    rows = {"x": encode(batch["image"]), "label": batch["label"], "index": batch["index"],
            "mask": batch["mask"]}
    if buffers is None:
      buffers = _empty(rows, rows=num_batches * batch["mask"].shape[0], mesh=mesh)
    buffers = _write(buffers, rows, j, mesh=mesh)
  return Features(**buffers)


def split_features(encode, config, source, split, mesh, max_examples=0):
  """`extract_features` of a split of `source` (its first `max_examples` positions if > 0);
  the images that failed to decode are left out, named in `skipped` and logged once."""
  batches = data.eval_batches(config.data, source, split,
                              local_batch_size=parallel.local_batch_size(config.eval.batch_size),
                              process_index=jax.process_index(),
                              process_count=jax.process_count(), max_examples=max_examples)
  features = extract_features(encode, batches, mesh, batches.num_batches)
  skipped = tuple(source.example_name(split, int(p))
                  for p in np.sort(_from_every_process(batches.skipped)))
  if skipped:
    _log_skipped(source.name, split, skipped)
  return dataclasses.replace(features, skipped=skipped)


def _from_every_process(values):
  """The concatenation of every process's int array (a collective where there are several)."""
  values = np.asarray(values, np.int64)
  if jax.process_count() == 1:
    return values
  counts = multihost_utils.process_allgather(np.int64(len(values)))
  padded = np.zeros(max(1, int(counts.max())), np.int64)
  padded[:len(values)] = values
  gathered = multihost_utils.process_allgather(padded)
  return np.concatenate([row[:count] for row, count in zip(gathered, counts)])


@functools.lru_cache(maxsize=None)  # once per run and split, however many evaluations
def _log_skipped(source_name, split, names):
  if jax.process_index() == 0:
    logging.warning("%d image(s) of %s's %s split failed to decode and are left out of "
                    "evaluation (skipped_images): %s", len(names), source_name, split,
                    ", ".join(names))


@jax.jit
def _count_and_bound(index, mask):
  return jnp.sum(mask), jnp.max(jnp.where(mask, index, -1)) + 1


def num_examples(features):
  """How many real examples `features` holds."""
  return int(_count_and_bound(features.index, features.mask)[0])


def _position_bound(features):
  """1 + the largest position of a real example."""
  return int(_count_and_bound(features.index, features.mask)[1])


@functools.partial(jax.jit, static_argnames="mesh")
def _at_positions(rows, index, mask, positions, *, mesh):
  def per_device(rows, index, mask, positions):
    count = positions.shape[0]
    slot = jnp.clip(jnp.searchsorted(positions, index), 0, count - 1)
    slot = jnp.where(mask & (positions[slot] == index), slot, count)  # count: dropped
    found = jnp.zeros(count, jnp.int32).at[slot].set(1, mode="drop")
    rows = jax.tree.map(lambda x: jnp.zeros((count,) + x.shape[1:], x.dtype).at[slot].set(
        x, mode="drop"), rows)
    # Each position is one device's row at most: the sum is that row, exactly.
    return jax.lax.psum((rows, found), parallel.DATA_AXIS)

  rows, found = jax.shard_map(per_device, mesh=mesh, in_specs=(ROWS, ROWS, ROWS, P()),
                              out_specs=P(), check_vma=False)(rows, index, mask, positions)
  return rows, found > 0


def at_positions(features, positions):
  """(x [q, F], labels [q], found [q]) of the examples at sorted split `positions`,
  replicated on every device; rows not found (skipped, left out) are zeros."""
  positions = jnp.asarray(positions, jnp.int32)
  (x, labels), found = _at_positions((features.x, features.label), features.index,
                                     features.mask, positions, mesh=features.mesh)
  return x, labels, found


@jax.jit
def _restrict(mask, index, keep):
  return mask & keep[jnp.clip(index, 0, keep.shape[0] - 1)]


def label_subset(features, fraction, seed):
  """`features` of a class-balanced `fraction` of its examples (data.labelled.label_subset
  over the examples in split order, so every layout keeps the same ones)."""
  bound = _position_bound(features)
  (labels,), found = _at_positions((features.label,), features.index, features.mask,
                                   jnp.arange(bound, dtype=jnp.int32), mesh=features.mesh)
  labels, found = np.asarray(labels), np.asarray(found)
  keep = np.zeros(bound, bool)
  keep[found] = data.labelled.label_subset(labels[found], fraction, seed)
  return dataclasses.replace(
      features, mask=_restrict(features.mask, features.index, jnp.asarray(keep)))


# -------------------------------------------------------------------- kNN ----
def _local_top_k(queries, bank, valid, k, tile):
  """(cosine similarities, rows) of the k best of a device's bank rows for unit `queries`,
  scoring `tile` rows at a time, so the scores never take more than [queries, tile]."""
  rows = bank.shape[0]
  tile = min(tile, rows)
  k = min(k, rows)

  def add_tile(best, t):
    start = jnp.minimum(t * tile, rows - tile)  # the last tile ends at the last row...
    block = jax.lax.dynamic_slice_in_dim(bank, start, tile).astype(jnp.float32)
    inverse_norm = jax.lax.rsqrt(jnp.maximum(jnp.sum(block * block, -1), 1e-12))
    # Contracting the feature axes: no transposed copy of the bank.
    sims = jax.lax.dot_general(queries, block, (((1,), (1,)), ((), ()))) * inverse_norm
    ids = start + jnp.arange(tile)
    counted = jax.lax.dynamic_slice_in_dim(valid, start, tile) & (ids >= t * tile)  # ...once
    sims, picked = jax.lax.top_k(jnp.where(counted, sims, -jnp.inf), min(k, tile))
    # Earlier tiles first: among equal scores the lower row wins, as in one top_k.
    sims = jnp.concatenate([best[0], sims], axis=1)
    ids = jnp.concatenate([best[1], ids[picked]], axis=1)
    sims, picked = jax.lax.top_k(sims, k)
    return (sims, jnp.take_along_axis(ids, picked, axis=1)), None

  start = (jnp.full((queries.shape[0], k), -jnp.inf), jnp.zeros((queries.shape[0], k), jnp.int32))
  return jax.lax.scan(add_tile, start, jnp.arange(-(-rows // tile)))[0]


@functools.partial(jax.jit, static_argnames=("k", "chunk", "tile", "mesh"))
def _sharded_top_k(bank, valid, labels, index, queries, *, k, chunk, tile, mesh):
  def per_device(bank, valid, labels, index, queries):
    rows = queries.shape[0]
    chunks = -(-rows // chunk)
    queries = jnp.pad(queries, ((0, chunks * chunk - rows), (0, 0))).reshape(chunks, chunk, -1)
    me = jax.lax.axis_index(parallel.DATA_AXIS)

    def chunk_top_k(mine):
      # Every device scores every device's chunk against its own bank rows and keeps its k
      # best; only those candidates are all-gathered and merged.
      everyone = jax.lax.all_gather(losses.l2_normalize(mine), parallel.DATA_AXIS, tiled=True)
      sims, best = _local_top_k(everyone, bank, valid, k, tile)
      found = jax.lax.all_gather((sims, labels[best], index[best]), parallel.DATA_AXIS, axis=1,
                                 tiled=True)
      sims, best = jax.lax.top_k(found[0], k)
      found = (sims,) + tuple(jnp.take_along_axis(f, best, axis=1) for f in found[1:])
      return tuple(jax.lax.dynamic_slice_in_dim(f, me * chunk, chunk) for f in found)

    found = jax.lax.map(chunk_top_k, queries)
    return tuple(f.reshape(chunks * chunk, k)[:rows] for f in found)

  return jax.shard_map(per_device, mesh=mesh, in_specs=(ROWS,) * 5, out_specs=ROWS,
                       check_vma=False)(bank, valid, labels, index, queries)


def nearest_neighbours(bank, queries, k, chunk=256, tile=16384):
  """(cosine similarities, labels, positions) of each query's k nearest bank examples, best
  first: [query rows, k] arrays, sharded as the queries' rows are.

  `bank` and `queries` are `Features` on one mesh. Each device scores a block of about
  `chunk` queries gathered from all devices against its own bank rows, `tile` rows at a
  time, and keeps its k best; only those candidates are all-gathered and merged. A device
  holds 1/devices of the bank and at most [chunk, tile] scores: ImageNet-size banks fit.
  """
  mesh = bank.mesh
  k = min(k, num_examples(bank))
  return _sharded_top_k(bank.x, bank.mask, bank.label, bank.index, queries.x, k=k,
                        chunk=max(1, chunk // mesh.size), tile=tile, mesh=mesh)


@functools.partial(jax.jit, static_argnames=("ks", "num_classes", "mesh"))
def _knn_hits(sims, neighbour_labels, labels, mask, temperature, *, ks, num_classes, mesh):
  def per_device(sims, neighbour_labels, labels, mask):
    rows = jnp.arange(sims.shape[0])[:, None]
    hits = []
    for k in ks:
      # exp(sim / T), scaled by the best's: the same vote without overflow.
      weights = jnp.exp((sims[:, :k] - sims[:, :1]) / temperature)
      votes = jnp.zeros((sims.shape[0], num_classes)).at[rows, neighbour_labels[:, :k]].add(
          weights)
      hits.append(jnp.sum((jnp.argmax(votes, axis=1) == labels) & mask))
    return jax.lax.psum(jnp.stack(hits), parallel.DATA_AXIS)

  return jax.shard_map(per_device, mesh=mesh, in_specs=(ROWS,) * 4, out_specs=P(),
                       check_vma=False)(sims, neighbour_labels, labels, mask)


def knn_accuracies(train, test, num_classes, *, ks=(20, 200), temperature=0.07, chunk=256):
  """{k: top-1} of weighted kNN (Wu et al. 2018): the k nearest training examples by cosine
  similarity vote for their class with weight exp(sim / T). One search serves all k."""
  sims, neighbour_labels, _ = nearest_neighbours(train, test, max(ks), chunk)
  hits = _knn_hits(sims, neighbour_labels, test.label, test.mask, temperature, ks=tuple(ks),
                   num_classes=num_classes, mesh=test.mesh)
  count = num_examples(test)
  return {k: int(h) / count for k, h in zip(ks, np.asarray(hits))}


def knn_top1(train, test, num_classes, *, k=200, temperature=0.07, chunk=256):
  """Top-1 of weighted kNN with one k; see `knn_accuracies`."""
  return knn_accuracies(train, test, num_classes, ks=(k,), temperature=temperature,
                        chunk=chunk)[k]


# ----------------------------------------------------------- linear probe ----
@functools.partial(jax.jit, static_argnames="mesh")
def _moments(x, mask, *, mesh):
  """Mean and standard deviation per feature of the real rows, replicated."""
  def per_device(x, mask):
    def total(fn):
      return jax.lax.psum(diagnostics.chunked_sum(fn, x, mask), parallel.DATA_AXIS)

    count = jax.lax.psum(jnp.sum(mask), parallel.DATA_AXIS)
    mean = total(lambda x, m: jnp.sum(jnp.where(m[:, None], x, 0), 0)) / count
    var = total(lambda x, m: jnp.sum(jnp.where(m[:, None], x - mean, 0) ** 2, 0)) / count
    return mean, jnp.sqrt(var) + 1e-6

  return jax.shard_map(per_device, mesh=mesh, in_specs=(ROWS,) * 2, out_specs=P(),
                       check_vma=False)(x, mask)


@functools.partial(jax.jit, static_argnames=("num_classes", "epochs", "batch_size",
                                             "num_rows", "positions", "mesh"))
def _train_linear(x, y, index, mask, mean, std, key, lr, weight_decay, *, num_classes, epochs,
                  batch_size, num_rows, positions, mesh):
  """AdamW on softmax cross-entropy, batches drawn without replacement each epoch.

  An epoch visits the split's positions in a random order (the same on every layout) and
  batch s holds the real examples ranked s * batch_size to (s + 1) * batch_size - 1 in it.
  Each device gathers the batch's rows it holds into their slots and a psum assembles the
  batch (every row comes from one device, so the sum is exact); the update then runs
  replicated, identically on every device.
  """
  steps_per_epoch = num_rows // batch_size
  tx = optax.adamw(optax.cosine_decay_schedule(lr, epochs * steps_per_epoch),
                   weight_decay=weight_decay)
  dim = x.shape[1]

  def per_device(x, y, index, mask, mean, std, key):
    slot = jnp.where(mask, index, positions)
    real = jax.lax.psum(jnp.zeros(positions, jnp.int32).at[slot].add(1, mode="drop"),
                        parallel.DATA_AXIS) > 0
    params = {"w": jnp.zeros((dim, num_classes)), "b": jnp.zeros((num_classes,))}

    def loss_fn(p, xb, yb):
      logits = xb @ p["w"] + p["b"]
      return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    def epoch(carry, epoch_key):
      order = jax.random.permutation(epoch_key, positions)
      counted = real[order]
      rank_in_order = jnp.cumsum(counted) - 1
      used = counted & (rank_in_order < steps_per_epoch * batch_size)
      rank = jnp.full(positions, NEVER).at[order].set(jnp.where(used, rank_in_order, NEVER))
      mine = jnp.where(mask, rank[jnp.clip(index, 0, positions - 1)], NEVER)
      local_order = jnp.argsort(mine)
      # batch_size spare entries: a batch's slice never runs off the end.
      ranks = jnp.concatenate([mine[local_order], jnp.full(batch_size, NEVER, mine.dtype)])
      local_order = jnp.concatenate([local_order, jnp.zeros(batch_size, local_order.dtype)])

      def step(carry, s):
        p, opt_state = carry
        first = s * batch_size
        start = jnp.searchsorted(ranks, first)
        rows = jax.lax.dynamic_slice_in_dim(local_order, start, batch_size)
        slots = jax.lax.dynamic_slice_in_dim(ranks, start, batch_size) - first
        slots = jnp.where(slots < batch_size, slots, batch_size)  # later batches': dropped
        xb = jnp.zeros((batch_size, dim)).at[slots].set(x[rows].astype(jnp.float32),
                                                        mode="drop")
        yb = jnp.zeros(batch_size, jnp.int32).at[slots].set(y[rows], mode="drop")
        xb, yb = jax.lax.psum((xb, yb), parallel.DATA_AXIS)
        grads = jax.grad(loss_fn)(p, (xb - mean) / std, yb)
        updates, opt_state = tx.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), None

      return jax.lax.scan(step, carry, jnp.arange(steps_per_epoch))

    (params, _), _ = jax.lax.scan(epoch, (params, tx.init(params)),
                                  jax.random.split(key, epochs))
    return params

  return jax.shard_map(per_device, mesh=mesh, in_specs=(ROWS,) * 4 + (P(),) * 3,
                       out_specs=P(), check_vma=False)(x, y, index, mask, mean, std, key)


@functools.partial(jax.jit, static_argnames="ks")
def _topk_hits(logits, labels, mask, *, ks):
  _, top = jax.lax.top_k(logits, min(max(ks), logits.shape[-1]))
  hit = top == labels[:, None]
  return jnp.stack([jnp.sum(jnp.any(hit[:, :k], axis=1) & mask) for k in ks])


@functools.partial(jax.jit, static_argnames="ks")
def _probe_hits(x, labels, mask, mean, std, params, *, ks):
  # The standardisation folded into the classifier: no standardised copy of the features.
  w = params["w"] / std[:, None]
  b = params["b"] - mean @ w
  return _topk_hits(x.astype(jnp.float32) @ w + b, labels, mask, ks=ks)


def linear_probe_accuracies(train, test, num_classes, *, epochs=100, lr=1e-2,
                            weight_decay=1e-4, batch_size=256, seed=0, ks=(1, 5)):
  """{k: top-k} of a softmax classifier trained on standardised frozen features (the fast
  protocol: features extracted once, without augmentation). The standardisation's mean
  and standard deviation are the whole training split's."""
  mesh = train.mesh
  num_rows = num_examples(train)
  mean, std = _moments(train.x, train.mask, mesh=mesh)
  params = _train_linear(train.x, train.label, train.index, train.mask, mean, std,
                         jax.random.key(seed), lr, weight_decay, num_classes=num_classes,
                         epochs=epochs, batch_size=min(batch_size, num_rows), num_rows=num_rows,
                         positions=_position_bound(train), mesh=mesh)
  hits = _probe_hits(test.x, test.label, test.mask, mean, std, params, ks=tuple(ks))
  count = num_examples(test)
  return {k: int(h) / count for k, h in zip(ks, np.asarray(hits))}


def linear_probe_top1(*args, **kwargs):
  return linear_probe_accuracies(*args, ks=(1,), **kwargs)[1]


def topk_accuracies(logits, ks=(1, 5)):
  """{k: fraction of examples whose label is among the k largest logits}, of `Features`
  whose rows are logits."""
  hits = _topk_hits(logits.x.astype(jnp.float32), logits.label, logits.mask, ks=tuple(ks))
  count = num_examples(logits)
  return {k: int(h) / count for k, h in zip(ks, np.asarray(hits))}


# ------------------------------------------------------------ evaluation ----
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


def config_linear_probe(train, test, num_classes, eval_config, ks=(1, 5)):
  """`linear_probe_accuracies` with config.eval's hyperparameters."""
  e = eval_config
  return linear_probe_accuracies(train, test, num_classes, epochs=e.linear_epochs,
                                 lr=e.linear_lr, weight_decay=e.linear_weight_decay,
                                 batch_size=e.linear_batch_size, ks=ks)


def stage_probes(encode_stages, config, source, mesh, prefix="", label_fraction=1.0):
  """{prefix}linear_top1_<stage>: the fast linear probe on each ResNet stage's pooled
  features (`encode_stages(images) -> {stage: [B, C]}`, see models.stage_features), from
  one pass over each split, trained on a class-balanced `label_fraction` of the train
  split. Pretext tasks often shape the last stage to their own task: an earlier one can
  hold the better features (Goyal et al. 2019)."""
  e = config.eval
  train = split_features(encode_stages, config, source, "train", mesh, e.max_train_examples)
  test = split_features(encode_stages, config, source, "test", mesh)
  if label_fraction < 1:
    train = label_subset(train, label_fraction, config.seed)

  def stage(features, name):
    return dataclasses.replace(features, x=features.x[name])

  return {f"{prefix}linear_top1_{name}": config_linear_probe(
      stage(train, name), stage(test, name), source.num_classes, e, ks=(1,))[1]
          for name in train.x}


def evaluate_encoder(encode, config, source, mesh, prefix="", pairs=None, encode_stages=None):
  """kNN, fast linear probe and diagnostics of the encoder on the labelled splits, and
  how many of their images failed to decode (skipped_images).

  `pairs`, a batch with 'view1' and 'view2' (two augmentations of the same images, see
  `positive_pairs`), adds the alignment diagnostic; `encode_stages`, the probe on each
  ResNet stage (`stage_probes`).
  """
  e = config.eval
  train = split_features(encode, config, source, "train", mesh, e.max_train_examples)
  test = split_features(encode, config, source, "test", mesh)
  knn = knn_accuracies(train, test, source.num_classes, ks=knn_ks(e),
                       temperature=e.knn_temperature)
  linear = config_linear_probe(train, test, source.num_classes, e)
  first, _, found = at_positions(test, np.arange(min(e.diagnostic_examples,
                                                     _position_bound(test))))
  results = {"knn_top1": knn[e.knn_k], **{f"knn_top1_k{k}": v for k, v in knn.items()},
             "linear_top1": linear[1], "linear_top5": linear[5],
             "uniformity": diagnostics.uniformity(first, found),
             "effective_rank": diagnostics.effective_rank(test.x, test.mask),
             "skipped_images": len(train.skipped) + len(test.skipped),
             "test_images": num_examples(test)}
  if pairs is not None:
    results["alignment"] = diagnostics.alignment(encode(pairs["view1"]), encode(pairs["view2"]))
  if encode_stages is not None:
    results.update(stage_probes(encode_stages, config, source, mesh))
  return {prefix + k: v for k, v in results.items()}


# ---------------------------------------------------- features by example ----
@functools.partial(jax.jit, static_argnames=("rows", "mesh"))
def _in_index_order(x, index, mask, *, rows, mesh):
  """Rows moved to their example's index: row i of the result is example i."""
  target = jnp.where(mask, index, rows)  # past the end: dropped
  by_index = (jnp.zeros((rows, x.shape[1]), jnp.float32).at[target].set(x, mode="drop"),
              jnp.zeros((rows,), bool).at[target].set(True, mode="drop"))
  return jax.lax.with_sharding_constraint(by_index, parallel.batch_sharding(mesh))


def features_by_index(encode, config, source, mesh):
  """Features of the whole training split in index order, kept on the devices.

  Returns (features [N', F] float32, valid [N'] bool), both sharded by rows over 'data':
  row i holds the example whose `index` is i; N' is the split's size rounded up to a
  multiple of the devices, and rows that no example filled (padding, images that failed
  to decode) are zero and invalid. For methods' epoch-start hooks (k-means over the
  training split): no host holds more than its share.
  """
  features = split_features(encode, config, source, "train", mesh)
  rows = -(-source.num_train // mesh.size) * mesh.size
  return _in_index_order(features.x, features.index, features.mask, rows=rows, mesh=mesh)
