"""DeepCluster v2: each epoch's pseudo-labels are every example's nearest prototype, by its
index, sharded over the devices; a resumed run clusters and trains exactly as one that
did not stop."""
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jax_ssl import evaluate, losses, methods, parallel, step as step_lib, train
from jax_ssl.data import make_source, pipeline

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


def test_a_resumed_run_keeps_its_pseudo_labels_and_trains_the_same(digit_folder, tmp_path):
  def run(workdir, max_steps):
    config = dc_config(f"folder:{digit_folder}")  # 160 images at 32: 5 steps an epoch
    config.train.update(batch_size=32, max_steps=max_steps, checkpoint_every_steps=3,
                        num_epochs=2)
    return train.train_and_evaluate(config, str(workdir))

  run(tmp_path / "straight", 7)
  run(tmp_path / "resumed", 3)
  run(tmp_path / "resumed", 7)  # from step 3: epoch 1's hook runs after the resume
  straight, resumed = (_checkpointed_state(tmp_path / name, 7) for name in ("straight",
                                                                            "resumed"))
  for key in ("labels", "prototypes", "epoch"):
    np.testing.assert_array_equal(resumed["method_state"][key], straight["method_state"][key])
  assert int(straight["method_state"]["epoch"]) == 1
  np.testing.assert_array_equal(resumed["params"]["projector"]["dense_out"]["kernel"],
                                straight["params"]["projector"]["dense_out"]["kernel"])
