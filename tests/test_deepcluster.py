"""DeepCluster v2: each epoch's pseudo-labels are every example's nearest prototype, by its
index, sharded over the devices; a resumed run clusters and trains exactly as one that
did not stop. DeepCluster v1: PCA whitening, the weights that stand for uniform sampling
over clusters, and the same resume."""
import functools

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jax_ssl import evaluate, losses, methods, parallel, step as step_lib, train
from jax_ssl.data import make_source, pipeline
from jax_ssl.methods import deepcluster

from test_contract import _checkpointed_state, small_config


def dc_config(source):
  config = small_config("deepcluster_v2", source)
  config.deepcluster_v2.update(num_prototypes=6, num_heads=2, kmeans_iterations=3)
  return config


@pytest.fixture(scope="module")
def hooked(digit_folder):
  """The state after one step, then the epoch-start hook of epoch 0 and of epoch 1."""
  config = dc_config(f"folder:{digit_folder}")
  source = make_source(config.data)
  mesh = parallel.make_mesh()
  method, run, tx, schedule = step_lib.make_run(config, mesh, steps_per_epoch=10,
                                                total_steps=20, num_train=source.num_train)
  state = step_lib.create_state(run, method, tx)
  epoch_start = step_lib.make_epoch_start(run, method, tx)
  encoder_of = step_lib.make_encoder(method.encoder(config))

  def context(state):
    return methods.EpochContext(run, lambda: evaluate.features_by_index(
        encoder_of(state), config, source, mesh))

  state = epoch_start(state, 0, context(state))
  labels_0 = np.asarray(state["method_state"]["labels"])
  train_step = step_lib.make_train_step(run, method, tx, schedule, layout=state)
  batches = pipeline.pretrain_batches(config.data, source, local_batch_size=16, seed=0)
  state, metrics = train_step(state, parallel.global_batch(next(batches), mesh))
  return run, source, context(state), epoch_start(state, 1, context(state)), labels_0, metrics


def test_pseudo_labels_are_each_examples_nearest_prototype_by_index(hooked):
  run, source, context, state, labels_0, metrics = hooked
  labels = state["method_state"]["labels"]
  assert labels.sharding.spec == P(None, "data") and labels.shape == (2, 160)
  assert int(state["method_state"]["epoch"]) == 1 and np.isfinite(metrics["loss"])
  features, valid = context.train_features()
  assert np.asarray(valid).all()
  z = np.asarray(losses.l2_normalize(run.model.apply(
      {"params": state["params"], "batch_stats": state["batch_stats"]}, features, train=False,
      method=lambda model, x, train: model.projector(x, train=train))))
  prototypes = np.asarray(state["method_state"]["prototypes"])
  for head in range(2):
    np.testing.assert_allclose(np.linalg.norm(prototypes[head], axis=1), 1.0, rtol=1e-5)
    nearest = np.argmax(z @ prototypes[head].T, axis=1)
    np.testing.assert_array_equal(np.asarray(labels)[head], nearest)
    assert len(np.unique(nearest)) == 6  # no cluster left empty
  # The heads differ (their own k-means seeds) and the labels move from epoch to epoch.
  assert not np.array_equal(np.asarray(labels)[0], np.asarray(labels)[1])
  assert not np.array_equal(np.asarray(labels), labels_0)


def v1_config(source):
  config = small_config("deepcluster", source)
  config.deepcluster.update(num_clusters=6, pca_dim=4, kmeans_iterations=3)
  return config


# (config, the method-state entries the hook writes, a parameter it trains)
RESUMED = {"deepcluster_v2": (dc_config, ("labels", "prototypes", "epoch"),
                              ("projector", "dense_out", "kernel")),
           "deepcluster": (v1_config, ("labels", "cluster_sizes", "epoch"),
                           ("classifier", "kernel"))}


@pytest.mark.parametrize("name", list(RESUMED))
def test_a_resumed_run_keeps_its_pseudo_labels_and_trains_the_same(name, digit_folder,
                                                                   tmp_path):
  make_config, keys, trained = RESUMED[name]

  def run(workdir, max_steps):
    config = make_config(f"folder:{digit_folder}")  # 160 images at 32: 5 steps an epoch
    config.train.update(batch_size=32, max_steps=max_steps, checkpoint_every_steps=3,
                        num_epochs=2)
    return train.train_and_evaluate(config, str(workdir))

  run(tmp_path / "straight", 7)
  run(tmp_path / "resumed", 3)
  run(tmp_path / "resumed", 7)  # from step 3: epoch 1's hook runs after the resume
  straight, resumed = (_checkpointed_state(tmp_path / name, 7) for name in ("straight",
                                                                            "resumed"))
  for key in keys:
    np.testing.assert_array_equal(resumed["method_state"][key], straight["method_state"][key])
  assert int(straight["method_state"]["epoch"]) == 1
  leaf = lambda state: functools.reduce(lambda tree, k: tree[k], trained, state["params"])
  np.testing.assert_array_equal(leaf(resumed), leaf(straight))
  labels = np.asarray(straight["method_state"]["labels"])
  assert len(np.unique(labels)) == 6  # every cluster has members: none left empty


def test_pca_whitening_gives_unit_covariance_on_the_valid_rows():
  rng = np.random.default_rng(0)
  mixing = rng.normal(size=(12, 12)) * np.linspace(0.1, 3.0, 12)  # correlated, scaled
  features = (rng.normal(size=(400, 12)) @ mixing + 5.0).astype(np.float32)
  valid = np.arange(400) < 360
  features[~valid] = 1e3  # padding rows must not count
  sharded = jax.device_put(features, parallel.batch_sharding(parallel.make_mesh()))
  whitened = np.asarray(deepcluster.pca_whiten(sharded, valid, dims=5), np.float64)[valid]
  np.testing.assert_allclose(whitened.mean(0), 0.0, atol=1e-4)
  np.testing.assert_allclose(whitened.T @ whitened / len(whitened), np.eye(5), atol=1e-4)
  # The first axes are the largest principal components: NumPy's, up to sign.
  centred = features[valid] - features[valid].mean(0)
  axes = np.linalg.eigh(centred.T @ centred / len(centred))[1][:, ::-1][:, :5]
  projected = centred @ axes
  correlation = np.abs((projected / projected.std(0)).T @ whitened / len(whitened))
  np.testing.assert_allclose(np.diag(correlation), 1.0, atol=1e-3)


def test_cluster_weights_stand_for_uniform_sampling_over_the_clusters():
  sizes = np.array([1.0, 3.0, 0.0, 6.0])  # 10 examples, one empty cluster
  labels = np.array([0, 1, 1, 1] + [3] * 6)
  weights = np.asarray(deepcluster.uniform_cluster_weights(labels, sizes))
  np.testing.assert_allclose(weights.mean(), 1.0, rtol=1e-6)
  per_cluster = np.bincount(labels, weights, minlength=4)
  np.testing.assert_allclose(per_cluster[[0, 1, 3]], 10 / 3, rtol=1e-6)  # equal shares
