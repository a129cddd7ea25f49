"""DeepCluster (Caron, Bojanowski, Joulin & Douze 2018): classify images into the k-means
clusters of their own features, re-clustered every epoch.

At the start of every epoch the evaluation encoder's features of the whole training split
(`EpochContext.train_features`, sharded by rows) are PCA-whitened to `pca_dim` dimensions
(`pca_whiten`), l2-normalised and clustered by Euclidean k-means on the devices
(jax_ssl/kmeans.py, which re-seeds empty clusters); each example's cluster, kept by its
`index`, is its pseudo-label for the epoch. The classifier on the backbone's features is
then re-initialised (the paper: the new clusters have no relation to the old ones) and
its optimizer state reset, and the network is trained with cross-entropy to the labels.

The paper samples images uniformly over the clusters so that a big cluster does not take
the batches over. This loop draws batches by example, so each example's loss is weighted
by N / (K' n_c) instead (n_c the size of its cluster, K' the non-empty clusters, N the
split): the expectation of the loss under uniform sampling over clusters. Not done: the
paper's Sobel filter on the input (a fixed layer that removes colour), and its MLP of two
4096 layers between AlexNet's convs and the classifier (the classifier here reads the
pooled ResNet features, which are also what is clustered).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import PartitionSpec as P

from jax_ssl import config as config_lib, kmeans, losses, methods, models, parallel
from jax_ssl.data import views
from jax_ssl.methods import common

GROUP = "view"
CLASSIFIER_INIT_STD = 0.01  # the paper's top layer starts from N(0, 0.01^2), bias 0


def config():
  return ml_collections.ConfigDict(dict(
      num_clusters=10_000,
      pca_dim=256,                # whitened dimensions clustered
      kmeans_iterations=20,       # faiss's default, as the official code
  ))


def cluster_views():
  return views.groups(**{GROUP: views.group()})


def tiny(c):
  c.deepcluster.update(num_clusters=30, pca_dim=16, kmeans_iterations=10)


class ClusterClassifier(nn.Module):
  """Images -> (backbone features [B, F], cluster logits [B, K])."""
  backbone: nn.Module
  num_clusters: int

  @nn.compact
  def __call__(self, x, train: bool):
    features = self.backbone(x, train=train)
    classifier = nn.Dense(self.num_clusters, name="classifier",
                          kernel_init=nn.initializers.normal(CLASSIFIER_INIT_STD))
    return features, classifier(features).astype(jnp.float32)


def create_model(c):
  return ClusterClassifier(models.create_backbone(c.model), c.deepcluster.num_clusters)


def _rows(run):
  """Rows of per-example state, as EpochContext.train_features gives them."""
  return -(-run.num_train // run.mesh.size) * run.mesh.size


def init_state(run, variables, batch):
  del variables, batch
  k = run.config.deepcluster.num_clusters
  return {"labels": jnp.zeros((_rows(run),), jnp.int32),
          "cluster_sizes": jnp.ones((k,), jnp.float32), "epoch": jnp.zeros([], jnp.int32)}


@jax.jit
def _moments(features, valid):
  weight = valid.astype(jnp.float32)[:, None]
  count = jnp.maximum(weight.sum(), 1.0)
  mean = (weight * features).sum(0) / count
  centred = (features - mean) * weight
  return mean, centred.T @ centred / count


def pca_whiten(features, valid, dims):
  """Valid rows of `features` [N, F] projected on their `dims` principal axes and scaled to
  unit variance along each (eigenvalues floored at 1e-6 of the largest); [N, dims]."""
  features = features.astype(jnp.float32)
  mean, covariance = _moments(features, valid)
  eigenvalues, eigenvectors = jnp.linalg.eigh(covariance)  # ascending
  top = eigenvalues[::-1][:dims]
  scale = jax.lax.rsqrt(jnp.maximum(top, 1e-6 * top[0]))
  return (features - mean) @ (eigenvectors[:, ::-1][:, :dims] * scale)


def epoch_start(state, epoch, context):
  run = context.run
  s = run.config.deepcluster
  features, valid = context.train_features()
  points = losses.l2_normalize(pca_whiten(features, valid, s.pca_dim))
  key = jax.random.fold_in(jax.random.key(run.config.seed), epoch)
  cluster_key, head_key = jax.random.split(key)
  _, assignments, sizes = kmeans.kmeans(points, valid, cluster_key, num_clusters=s.num_clusters,
                                        iterations=s.kmeans_iterations, init="random",
                                        spherical=False)
  kernel = state["params"]["classifier"]["kernel"]
  classifier = {"kernel": CLASSIFIER_INIT_STD * jax.random.normal(head_key, kernel.shape),
                "bias": jnp.zeros_like(state["params"]["classifier"]["bias"])}
  return methods.EpochUpdate(
      params={**state["params"], "classifier": classifier},
      method_state={"labels": jnp.maximum(assignments, 0),  # padding rows: never read
                    "cluster_sizes": sizes, "epoch": jnp.asarray(epoch, jnp.int32)},
      reset_groups=("classifier",))


def uniform_cluster_weights(labels, cluster_sizes):
  """Per-example loss weights N / (K' n_c): uniform sampling over the K' non-empty
  clusters, in expectation; their mean over the split is 1."""
  clusters = jnp.sum(cluster_sizes > 0)
  return jnp.sum(cluster_sizes) / (clusters * jnp.maximum(cluster_sizes[labels], 1.0))


def loss(params, state, batch, rng, run):
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, logits = forward(batch[GROUP])
  method_state = state["method_state"]
  labels = method_state["labels"][batch["index"]]
  log_probs = jax.nn.log_softmax(logits)
  per_example = -jnp.take_along_axis(log_probs, labels[:, None], axis=1)[:, 0]
  weights = uniform_cluster_weights(labels, method_state["cluster_sizes"])
  metrics = {"embedding_std": losses.embedding_std(features),
             "cluster_accuracy": jnp.mean(jnp.argmax(logits, -1) == labels),
             "labels_epoch": method_state["epoch"].astype(jnp.float32)}
  return methods.LossResult(jnp.mean(weights * per_example), metrics, forward.batch_stats,
                            features=features)


def check(c, num_devices):
  del num_devices
  s = c.deepcluster
  feature_dim = models.backbone_feature_dim(c.model)
  checks = [
      ("num_clusters", s.num_clusters, isinstance(s.num_clusters, int)
       and s.num_clusters >= 2, "an integer >= 2"),
      ("pca_dim", s.pca_dim, isinstance(s.pca_dim, int) and 1 <= s.pca_dim <= feature_dim,
       f"an integer in [1, {feature_dim}] (the backbone's features)"),
      ("kmeans_iterations", s.kmeans_iterations, isinstance(s.kmeans_iterations, int)
       and s.kmeans_iterations >= 1, "an integer >= 1"),
  ]
  for field, value, ok, expected in checks:
    config_lib.require(ok, f"config.deepcluster.{field}", value, expected)


METHOD = methods.register(methods.Method(
    name="deepcluster", config=config, views=cluster_views, create_model=create_model,
    loss=loss, tiny=tiny, check=check, init_state=init_state,
    state_sharding={"labels": P(parallel.DATA_AXIS)}, epoch_start=epoch_start,
    param_groups={"classifier": methods.group(r"^classifier/")}))
