"""The method contract carries what the coming methods need, shown by small methods defined
here (not shipped): a memory bank indexed by example and sharded over the devices, an
epoch-start hook that assigns k-means pseudo-labels and resets a head, and an evaluation
encoder that is not params['backbone']. Also: the contract check names what a method lacks."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest
from jax.sharding import PartitionSpec as P

from jax_ssl import config as config_lib, evaluate, export, losses, memory_bank, methods, metrics
from jax_ssl import models
from jax_ssl import parallel, step as step_lib, train
from jax_ssl.data import make_source, pipeline
from jax_ssl.methods import common

from test_train import tiny_config  # a SimCLR config at the suite's tiny size


def small_config(name, source):
  """A registered method's config at the suite's tiny size."""
  c = config_lib.base_config(name)
  config_lib.shrink_for_cpu(c)
  c.data.update(source=source, image_size=16)
  c.train.update(batch_size=16, max_steps=3, checkpoint_every_steps=2, warmup_epochs=0)
  c.eval.update(batch_size=32, baseline=False, linear_epochs=1)
  c.optim.update(name="sgd", base_lr=0.1)
  return c


def registered(method):
  """A fixture body: `method` registered for one test module, then removed."""
  methods.register(method)
  yield method
  methods.unregister(method.name)


def _project(run, params, state, images):
  forward = common.Forward(run, params, state["batch_stats"])
  features, z = forward(images)
  return forward, features, losses.l2_normalize(z)


# ------------------------------------------------------------ memory bank ----
def bank_rows(run):
  """N rows rounded up to a multiple of the devices, so each device holds N' / devices."""
  return memory_bank.num_rows(run.num_train, run.mesh.size)


def bank_init_state(run, variables, batch):
  del variables, batch
  return {"bank": memory_bank.bank_for(run, run.config.bank_test.dim)}


def bank_loss(params, state, batch, rng, run):
  """Instance discrimination against the bank's row of each example (NPID's shape)."""
  del rng
  forward, features, z = _project(run, params, state, batch["view1"])
  bank = state["method_state"]["bank"]
  positives = memory_bank.read(bank, batch["index"])  # rows on other devices: gathered by XLA
  value = -jnp.mean(jnp.sum(z * positives, axis=-1))
  written = memory_bank.ema_write(bank, batch["index"], z, run.config.bank_test.momentum)
  return methods.LossResult(value, {"embedding_std": losses.embedding_std(z)},
                            forward.batch_stats, {"bank": written}, features)


BANK_METHOD = methods.Method(
    name="bank_test",
    config=lambda: ml_collections.ConfigDict(dict(dim=8, momentum=0.5)),
    views=lambda: common.two_views(),
    create_model=lambda c: common.EncoderWithHeads(models.create_backbone(c.model),
                                                   common.mlp_head(c, (16,), c.bank_test.dim)),
    loss=bank_loss, init_state=bank_init_state, state_sharding={"bank": P("data")})


@pytest.fixture(scope="module")
def bank_method():
  yield from registered(BANK_METHOD)


def _steps(config, mesh, batches):
  """The bank at the start, and the state after one step per batch."""
  method, run, tx, schedule = step_lib.make_run(config, mesh, steps_per_epoch=10, total_steps=10,
                                                num_train=4000)
  state = step_lib.create_state(run, method, tx)
  start = np.array(state["method_state"]["bank"])  # a copy: the step donates the state
  train_step = step_lib.make_train_step(run, method, tx, schedule, layout=state)
  for batch in batches:
    state, _ = train_step(state, parallel.global_batch(batch, mesh))
  return start, state


def test_a_memory_bank_is_sharded_by_rows_updated_by_index_and_the_same_on_1_and_8_devices(
    bank_method):
  config = small_config("bank_test", "builtin:mnist")
  source = make_source(config.data)
  batches = pipeline.pretrain_batches(config.data, source, local_batch_size=16, seed=0)
  batches = [next(batches) for _ in range(3)]
  start, eight = _steps(config, parallel.make_mesh(), batches)
  bank = eight["method_state"]["bank"]
  assert bank.sharding.spec == P("data") and bank.shape == (4000, 8)
  assert {shard.data.shape for shard in bank.addressable_shards} == {(500, 8)}
  assert eight["params"]["backbone"]["conv1"]["kernel"].sharding.is_fully_replicated

  # Written where the batches' examples are, nowhere else; unit rows throughout.
  seen = np.unique(np.concatenate([b["index"] for b in batches]))
  changed = np.flatnonzero(np.any(np.asarray(bank) != start, axis=1))
  np.testing.assert_array_equal(changed, seen)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(bank), axis=1), 1.0, rtol=1e-5)

  # The same bank on one device, to the rounding that 8 devices' other reduction order
  # leaves in the parameters after two steps (up to 2.1e-6 seen with jax 0.12).
  _, one = _steps(config, parallel.make_mesh(jax.devices()[:1]), batches)
  np.testing.assert_allclose(np.asarray(one["method_state"]["bank"]), np.asarray(bank),
                             atol=1e-5)


def _checkpointed_state(workdir, step):
  manager = ocp.CheckpointManager(f"{workdir}/checkpoints", item_names=("state",))
  return manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]


def test_a_memory_bank_resumes_exactly_through_the_loop(bank_method, digit_folder, tmp_path):
  def run(workdir, max_steps):
    config = small_config("bank_test", f"folder:{digit_folder}")
    config.train.update(max_steps=max_steps, checkpoint_every_steps=2, num_epochs=1)
    return train.train_and_evaluate(config, str(workdir))

  run(tmp_path / "straight", 4)
  run(tmp_path / "resumed", 2)
  run(tmp_path / "resumed", 4)  # from the checkpoint of step 2
  straight, resumed = (_checkpointed_state(tmp_path / name, 4) for name in ("straight", "resumed"))
  np.testing.assert_array_equal(resumed["method_state"]["bank"],
                                straight["method_state"]["bank"])
  np.testing.assert_array_equal(resumed["params"]["projector"]["dense_out"]["kernel"],
                                straight["params"]["projector"]["dense_out"]["kernel"])


# ------------------------------------------------ k-means at epoch start ----
NUM_CLUSTERS = 4


class ClusterModel(nn.Module):
  """A backbone and a linear head that classifies its features into pseudo-labels."""
  backbone: nn.Module

  @nn.compact
  def __call__(self, x, train: bool):
    features = self.backbone(x, train=train)
    return features, nn.Dense(NUM_CLUSTERS, name="head")(features)


@functools.partial(jax.jit, static_argnums=2)
def kmeans(features, valid, iterations=3):
  """Lloyd's k-means on sharded features; the first valid rows start the centroids."""
  features = losses.l2_normalize(features)
  centroids = features[:NUM_CLUSTERS]

  def assign(centroids):
    return jnp.argmax(features @ centroids.T, axis=1)

  for _ in range(iterations):
    one_hot = jax.nn.one_hot(assign(centroids), NUM_CLUSTERS) * valid[:, None]
    sums = one_hot.T @ features
    centroids = jnp.where(one_hot.sum(0)[:, None] > 0, losses.l2_normalize(sums), centroids)
  return centroids, jnp.where(valid, assign(centroids), -1).astype(jnp.int32)


def cluster_init_state(run, variables, batch):
  del variables, batch
  return {"labels": jnp.zeros((bank_rows(run),), jnp.int32),
          "centroids": jnp.zeros((NUM_CLUSTERS, models.backbone_feature_dim(run.config.model))),
          "epoch": jnp.zeros([], jnp.int32)}


def cluster_epoch_start(state, epoch, context):
  features, valid = context.train_features()
  centroids, labels = kmeans(features, valid)
  fresh = nn.Dense(NUM_CLUSTERS).init(jax.random.key(100 + epoch), features[:1])["params"]
  params = {**state["params"], "head": fresh}
  return methods.EpochUpdate(params, {"labels": labels, "centroids": centroids,
                                      "epoch": jnp.asarray(epoch, jnp.int32)},
                             reset_groups=("head",))


def cluster_loss(params, state, batch, rng, run):
  del rng
  forward = common.Forward(run, params, state["batch_stats"])
  features, logits = forward(batch["view1"])
  targets = state["method_state"]["labels"][batch["index"]]
  value = jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(logits), targets[:, None], 1))
  metrics = {"embedding_std": losses.embedding_std(features),
             "labels_epoch": state["method_state"]["epoch"].astype(jnp.float32)}
  return methods.LossResult(value, metrics, forward.batch_stats, features=features)


CLUSTER_METHOD = methods.Method(
    name="cluster_test", config=lambda: ml_collections.ConfigDict(dict(clusters=NUM_CLUSTERS)),
    views=lambda: common.two_views(),
    create_model=lambda c: ClusterModel(models.create_backbone(c.model)), loss=cluster_loss,
    init_state=cluster_init_state, state_sharding={"labels": P("data")},
    epoch_start=cluster_epoch_start, param_groups={"head": methods.group(r"^head/")})


@pytest.fixture(scope="module")
def cluster_method():
  yield from registered(CLUSTER_METHOD)


def test_an_epoch_start_hook_assigns_pseudo_labels_per_example_and_resets_a_head(
    cluster_method, digit_folder):
  config = small_config("cluster_test", f"folder:{digit_folder}")
  config.optim.momentum = 0.9
  source = make_source(config.data)
  mesh = parallel.make_mesh()
  method, run, tx, schedule = step_lib.make_run(config, mesh, steps_per_epoch=10,
                                                total_steps=20, num_train=source.num_train)
  state = step_lib.create_state(run, method, tx)
  train_step = step_lib.make_train_step(run, method, tx, schedule, layout=state)
  batches = pipeline.pretrain_batches(config.data, source, local_batch_size=16, seed=0)
  state, _ = train_step(state, parallel.global_batch(next(batches), mesh))  # momentum moves
  encoder_of = step_lib.make_encoder(method.encoder(config))
  context = methods.EpochContext(run, lambda: evaluate.features_by_index(
      encoder_of(state), config, source, mesh))
  epoch_start = step_lib.make_epoch_start(run, method, tx)
  after = epoch_start(state, 1, context)

  labels = after["method_state"]["labels"]
  assert labels.sharding.spec == P("data") and int(after["method_state"]["epoch"]) == 1
  # The labels are each example's nearest centroid, by its index.
  features, valid = context.train_features()
  features = np.asarray(losses.l2_normalize(features))[:source.num_train]
  assert np.asarray(valid)[:source.num_train].all()
  nearest = np.argmax(features @ np.asarray(after["method_state"]["centroids"]).T, axis=1)
  np.testing.assert_array_equal(np.asarray(labels)[:source.num_train], nearest)
  # The head is new and its momentum starts from zero; the rest keeps its state.
  fresh = nn.Dense(NUM_CLUSTERS).init(jax.random.key(101), features[:1])["params"]
  np.testing.assert_array_equal(after["params"]["head"]["kernel"], fresh["kernel"])
  head_momentum = jax.tree.leaves(after["opt_state"].inner_states["head"])
  assert all(np.all(np.asarray(leaf) == 0) for leaf in head_momentum)
  default_momentum = jax.tree.leaves(after["opt_state"].inner_states["default"])
  assert any(np.any(np.asarray(leaf) != 0) for leaf in default_momentum)


def test_features_by_index_puts_each_example_in_its_row(digit_folder):
  config = tiny_config(f"folder:{digit_folder}")
  source = make_source(config.data)
  mesh = parallel.make_mesh()
  mean_colour = jax.jit(lambda images: images.mean(axis=(1, 2)))
  features, valid = evaluate.features_by_index(mean_colour, config, source, mesh)
  assert features.sharding.spec == P("data") and features.shape == (160, 3)
  expected = np.zeros((160, 3), np.float32)
  for batch in pipeline.eval_batches(config.data, source, "train", local_batch_size=32):
    rows = batch["index"][batch["mask"]]
    expected[rows] = batch["image"][batch["mask"]].mean(axis=(1, 2))
  assert np.asarray(valid).all()
  np.testing.assert_allclose(np.asarray(features), expected, atol=1e-6)


def test_the_loop_runs_the_hook_before_the_first_step_of_every_epoch(
    cluster_method, digit_folder, tmp_path):
  config = small_config("cluster_test", f"folder:{digit_folder}")  # 160 images: 10 steps an epoch
  config.train.update(max_steps=12, num_epochs=2, log_every_steps=1, checkpoint_every_steps=12)
  train.train_and_evaluate(config, str(tmp_path))
  records = [r for r in metrics.read_metrics(tmp_path) if "loss" in r]
  assert [r["labels_epoch"] for r in records] == [0.0] * 10 + [1.0] * 2


# --------------------------------------------- an encoder of two networks ----
class TwoEncoders(nn.Module):
  """CMC's shape: one encoder per view, and for evaluation both, concatenated."""
  config: ml_collections.ConfigDict

  def setup(self):
    self.enc_a = models.create_backbone(self.config.model)
    self.enc_b = models.create_backbone(self.config.model)
    self.projector = common.mlp_head(self.config, (16,), 8)

  def __call__(self, x, train: bool):
    return jnp.concatenate([self.enc_a(x, train=train), self.enc_b(x, train=train)], axis=-1)

  def views(self, x1, x2, train: bool):
    z1 = self.projector(self.enc_a(x1, train=train), train=train)
    return z1, self.projector(self.enc_b(x2, train=train), train=train)


def two_loss(params, state, batch, rng, run):
  del rng
  forward = common.Forward(run, params, state["batch_stats"])
  z1, z2 = forward(batch["view1"], batch["view2"], method=TwoEncoders.views)
  value = common.global_loss(run, losses.nt_xent, z1, z2, temperature=0.2)
  return methods.LossResult(value, {"embedding_std": losses.embedding_std(z1)},
                            forward.batch_stats)


def two_encoder(config):
  def pick(tree):
    return {k: tree[k] for k in ("enc_a", "enc_b") if k in tree}
  return methods.Encoder(TwoEncoders(config),
                         lambda params, stats: {"params": pick(params),
                                                "batch_stats": pick(stats)})


TWO_METHOD = methods.Method(
    name="two_test", config=lambda: ml_collections.ConfigDict(dict(temperature=0.2)),
    views=lambda: common.two_views(), create_model=TwoEncoders,
    init_model=lambda run, rng, batch: run.model.init(rng, batch["view1"], batch["view2"],
                                                      train=False, method=TwoEncoders.views),
    loss=two_loss, encoder=two_encoder)


@pytest.fixture(scope="module")
def two_method():
  yield from registered(TWO_METHOD)


def test_an_encoder_other_than_the_backbone_is_evaluated_exported_and_loaded(
    two_method, digit_folder, tmp_path):
  config = small_config("two_test", f"folder:{digit_folder}")
  config.train.update(max_steps=2, checkpoint_every_steps=2)
  final = train.train_and_evaluate(config, str(tmp_path))
  assert 0 <= final["linear_top1"] <= 1 and 0 <= final["knn_top1"] <= 1
  info = export.read_info(str(tmp_path))
  width = models.backbone_feature_dim(config.model)
  assert info["encoder"] == "method" and info["feature_dim"] == 2 * width
  assert not (tmp_path / "export" / "encoder.safetensors").exists()  # not a torchvision ResNet
  module, variables, _ = export.load_encoder(str(tmp_path))
  images = np.random.default_rng(0).random((4, 16, 16, 3), np.float32)
  features = module.apply(variables, images, train=False)
  # The same as the trained state's encoder, read back from the last checkpoint.
  state = _checkpointed_state(tmp_path, 2)
  expected = two_encoder(config).module.apply(
      two_encoder(config).variables(state["params"], state["batch_stats"]), images, train=False)
  assert features.shape == (4, 2 * width)
  np.testing.assert_allclose(np.asarray(features), np.asarray(expected), atol=1e-5)


# ------------------------------------------------------- the contract check ----
def _complete(**changes):
  fields = dict(name="check_test", config=ml_collections.ConfigDict, views=common.two_views,
                create_model=lambda c: None, loss=lambda params, state, batch, rng, run: None)
  return methods.Method(**{**fields, **changes})


@pytest.mark.parametrize("changes, named", [
    (dict(loss=None), "lacks `loss`"),
    (dict(views=None), "lacks `views`"),
    (dict(loss=lambda params, state, batch: None), "`loss` takes 3 argument"),
    (dict(after_update=lambda state, run: state), "`after_update` takes 2 argument"),
    (dict(name="data"), "is a top-level config field"),
    (dict(state_sharding={"bank": "data"}), "state_sharding['bank'] is not a PartitionSpec"),
    (dict(param_groups={"default": methods.group("x")}), "other than 'default'"),
    (dict(augment={"jiter": (0.4,)}), "augment names fields config.data.augment lacks"),
])
def test_the_contract_check_names_what_a_method_gets_wrong(changes, named):
  with pytest.raises(TypeError, match="method 'check_test'|does not meet the contract") as error:
    methods.register(_complete(**changes))
  assert named in str(error.value)
  assert "check_test" not in methods.names()


def test_every_shipped_method_meets_the_contract():
  for name in methods.names():
    assert methods.contract_problems(methods.get(name)) == [], name
    config = config_lib.base_config(name)
    assert name in config and config.data.views
