"""DeepCluster v2 (Caron et al. 2020, with SwAV): predict each image's k-means cluster.

At the start of every epoch the training split's normalised projections are clustered by
spherical k-means on the devices (jax_ssl/kmeans.py), once per head with its own seed;
each head's prototypes become its centroids and each example's pseudo-label, kept by its
`index`, is its cluster. During the epoch every crop of an image (SwAV's multi-crop) is
scored against each head's prototypes, scaled by 1/temperature, and trained with
cross-entropy to its pseudo-labels; the prototypes are fixed between epochs. Unlike the
official code, which clusters a memory bank of the previous epoch's crop projections, the
hook projects features of the un-augmented training images computed at epoch start
(`EpochContext.train_features`), so the first epoch's labels come from the initial
network rather than from an extra pass.
"""
import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import PartitionSpec as P

from jax_ssl import config as config_lib, kmeans, losses, methods, models, parallel
from jax_ssl.methods import common, swav


def config():
  return ml_collections.ConfigDict(dict(
      num_prototypes=3000,        # clusters per head
      num_heads=3,                # k-means runs per epoch, each its own prototypes and labels
      temperature=0.1,
      kmeans_iterations=10,
      proj_hidden_dims=(2048,),
      proj_dim=128,
  ))


def tiny(c):
  c.deepcluster_v2.update(proj_hidden_dims=(64,), proj_dim=32, num_prototypes=30)
  c.data.views.local.update(count=min(c.data.views.local.count, 2), size=16)


def check(c, num_devices):
  del num_devices
  s = c.deepcluster_v2
  checks = [
      ("temperature", s.temperature, s.temperature > 0, "> 0"),
      ("num_prototypes", s.num_prototypes, s.num_prototypes >= 2, ">= 2"),
      ("num_heads", s.num_heads, s.num_heads >= 1, ">= 1"),
      ("kmeans_iterations", s.kmeans_iterations, s.kmeans_iterations >= 1, ">= 1"),
  ]
  for field, value, ok, expected in checks:
    config_lib.require(ok, f"config.deepcluster_v2.{field}", value, expected)
  names = sorted(c.data.views.keys())
  config_lib.require(names == ["global", "local"], "config.data.views", names,
                     "the groups 'global' and 'local' (multi-crop)")


def create_model(c):
  s = c.deepcluster_v2
  projector = common.mlp_head(c, s.proj_hidden_dims, s.proj_dim)
  return common.EncoderWithHeads(models.create_backbone(c.model), projector)


def _rows(run):
  """Rows of per-example state: the split's size rounded up to a multiple of the devices,
  as EpochContext.train_features gives them."""
  return -(-run.num_train // run.mesh.size) * run.mesh.size


def init_state(run, variables, batch):
  del variables, batch
  s = run.config.deepcluster_v2
  return {"labels": jnp.zeros((s.num_heads, _rows(run)), jnp.int32),
          "prototypes": jnp.zeros((s.num_heads, s.num_prototypes, s.proj_dim)),
          "epoch": jnp.zeros([], jnp.int32)}


def _project(run, params, batch_stats, features):
  z = run.model.apply({"params": params, "batch_stats": batch_stats}, features, train=False,
                      method=lambda model, x, train: model.projector(x, train=train))
  return losses.l2_normalize(z)


def _crops(batch, name):
  """A view group's crops as [B * n, S, S, 3], each example's adjacent, and n."""
  crops = common.stacked(batch, name)
  return crops.reshape((-1,) + crops.shape[2:]), crops.shape[1]


def epoch_start(state, epoch, context):
  run = context.run
  s = run.config.deepcluster_v2
  features, valid = context.train_features()
  z = _project(run, state["params"], state["batch_stats"], features)
  key = jax.random.fold_in(jax.random.key(run.config.seed), epoch)
  prototypes, labels = [], []
  for head in range(s.num_heads):
    centroids, assignments, _ = kmeans.kmeans(
        z, valid, jax.random.fold_in(key, head), num_clusters=s.num_prototypes,
        iterations=s.kmeans_iterations)
    prototypes.append(centroids)
    labels.append(jnp.maximum(assignments, 0))  # padding rows: never read
  return methods.EpochUpdate(method_state={
      "labels": jnp.stack(labels), "prototypes": jnp.stack(prototypes),
      "epoch": jnp.asarray(epoch, jnp.int32)})


def loss(params, state, batch, rng, run):
  s = run.config.deepcluster_v2
  forward = common.Forward(run, params, state["batch_stats"], rng)
  images, num_global = _crops(batch, "global")
  features, z = forward(images)
  crops = [z.reshape(-1, num_global, z.shape[-1])]
  images, num_local = _crops(batch, "local")
  if num_local:  # one forward per resolution
    crops.append(forward(images)[1].reshape(-1, num_local, z.shape[-1]))
  z = losses.l2_normalize(jnp.concatenate(crops, axis=1))  # [B, crops, D]
  method_state = state["method_state"]
  targets = method_state["labels"][:, batch["index"]]  # [heads, B]
  value, accuracy = 0.0, 0.0
  for head in range(s.num_heads):
    logits = z @ method_state["prototypes"][head].T / s.temperature  # [B, crops, K]
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
    picked = jnp.take_along_axis(log_probs, targets[head][:, None, None], axis=2)
    value += -jnp.mean(picked) / s.num_heads
    accuracy += jnp.mean(jnp.argmax(logits, -1) == targets[head][:, None]) / s.num_heads
  metrics = {"embedding_std": losses.embedding_std(z[:, 0]), "cluster_accuracy": accuracy,
             "labels_epoch": method_state["epoch"].astype(jnp.float32)}
  return methods.LossResult(value, metrics, forward.batch_stats,
                            features=features.reshape(-1, num_global, features.shape[-1])[:, 0])


METHOD = methods.register(methods.Method(
    name="deepcluster_v2", config=config, views=swav.multicrop_views,
    create_model=create_model, loss=loss, tiny=tiny, check=check, init_state=init_state,
    state_sharding={"labels": P(None, parallel.DATA_AXIS)}, epoch_start=epoch_start))
