"""SwAV (Caron et al. 2020): swapped prediction of Sinkhorn codes over prototypes.

Every crop's normalised projection is scored against K unit-norm prototypes.
Codes come from the two first global crops by Sinkhorn-Knopp over the
global batch (and a queue of past projections once it is full); each of them
is predicted from every other crop. The prototypes are re-normalised after
every step and are frozen (no step, no decay, no momentum) for the first
epoch: their parameter group, `config.optim.groups.prototypes`.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import PartitionSpec as P

from jax_ssl import config as config_lib, losses, methods, models, parallel, sinkhorn
from jax_ssl.data import views
from jax_ssl.methods import common

NUM_ASSIGNED = 2  # crops whose codes are targets: SwAV's crops_for_assign = [0, 1]


def unit_columns_init(key, shape, dtype=jnp.float32):
  return losses.l2_normalize(jax.random.normal(key, shape, dtype), axis=0)


class SwAVModel(nn.Module):
  """backbone -> projector -> unit-norm projection -> prototype scores. The loss runs the
  backbone once per crop resolution and the head once over every crop (`encode`, `head`)."""
  backbone: nn.Module
  projector: nn.Module
  num_prototypes: int

  def setup(self):
    self.prototypes = nn.Dense(self.num_prototypes, use_bias=False,
                               kernel_init=unit_columns_init)

  def __call__(self, x, train: bool):
    features = self.encode(x, train)
    return features, self.head(features, train)

  def encode(self, x, train: bool):
    return self.backbone(x, train=train)

  def head(self, features, train: bool):
    z = losses.l2_normalize(self.projector(features, train=train))
    return z, self.prototypes(z)


def config():
  return ml_collections.ConfigDict(dict(
      num_prototypes=3000,
      temperature=0.1,
      epsilon=0.05,
      sinkhorn_iters=3,
      proj_hidden_dims=(2048,),
      proj_dim=128,
      queue_size=0,              # 0: no queue; 3840 in the small-batch recipes
      queue_start_epochs=15,
  ))


def multicrop_views():
  """2 global crops at config.data.image_size and 6 local ones at 96 pixels (SwAV)."""
  return views.groups(
      **{"global": views.group(count=2),
         "local": views.group(count=6, size=96, crop_area_min=0.05, crop_area_max=0.14)})


def digits_multicrop(c):
  """The tiny configs' multi-crop on 28-pixel digits: 2 x 28 + 2 x 14 pixels, local crops
  from 15-40% of the area (a smaller crop of a digit is a stroke fragment)."""
  c.data.views["global"].count = 2
  c.data.views.local.update(count=2, size=14, crop_area_min=0.15, crop_area_max=0.4)


def tiny(c):
  c.swav.update(proj_hidden_dims=(64,), proj_dim=32, num_prototypes=30, queue_size=0)
  c.data.views.local.update(count=min(c.data.views.local.count, 2), size=16)


def check(c, num_devices):
  s = c.swav
  checks = [
      ("temperature", s.temperature, s.temperature > 0, "> 0"),
      ("epsilon", s.epsilon, s.epsilon > 0, "> 0"),
      ("sinkhorn_iters", s.sinkhorn_iters, s.sinkhorn_iters >= 1, ">= 1"),
      ("num_prototypes", s.num_prototypes, s.num_prototypes >= 2, ">= 2"),
      # Each device runs Sinkhorn on its own share of the queue.
      ("queue_size", s.queue_size, s.queue_size >= 0 and s.queue_size % num_devices == 0,
       f"0 (no queue) or a multiple of the device count {num_devices}"),
  ]
  for field, value, ok, expected in checks:
    config_lib.require(ok, f"config.swav.{field}", value, expected)
  names = sorted(c.data.views.keys())
  config_lib.require(names == ["global", "local"], "config.data.views", names,
                     "the groups 'global' and 'local' (SwAV's multi-crop)")
  config_lib.require(c.data.views["global"].count >= NUM_ASSIGNED,
                     "config.data.views.global.count", c.data.views["global"].count,
                     f">= {NUM_ASSIGNED}: codes come from the global crops and predict each other")


def create_model(c):
  s = c.swav
  projector = common.mlp_head(c, s.proj_hidden_dims, s.proj_dim)
  return SwAVModel(models.create_backbone(c.model), projector, s.num_prototypes)


def init_state(run, variables, batch):
  del variables, batch
  s = run.config.swav
  if not s.queue_size:
    return {}
  return {"queue": jnp.zeros((NUM_ASSIGNED, s.queue_size, s.proj_dim)),
          "queue_count": jnp.zeros([], jnp.int32)}


def after_update(params, method_state, step, run):
  del step, run
  kernel = losses.l2_normalize(params["prototypes"]["kernel"], axis=0)
  return {**params, "prototypes": {"kernel": kernel}}, method_state


def _crops(batch, key):
  """[B * n, S, S, 3], each example's crops adjacent, and n."""
  crops = common.stacked(batch, key)
  return crops.reshape((-1,) + crops.shape[2:]), crops.shape[1]


def _codes(run, scores, queue=None, prototypes=None, use_queue=None):
  """Sinkhorn over this device's rows and its share of the queue, summed over devices.

  The queue's scores are computed inside the branch that uses them, so a step whose
  queue is not yet full does not pay for them.
  """
  s = run.config.swav
  solve = functools.partial(sinkhorn.sinkhorn, epsilon=s.epsilon, num_iters=s.sinkhorn_iters,
                            axis_name=parallel.DATA_AXIS)
  spec = P(parallel.DATA_AXIS)
  if queue is None:
    return jax.shard_map(solve, mesh=run.mesh, in_specs=spec, out_specs=spec)(scores)

  def per_device(scores, queue, prototypes, use_queue):
    with_queue = lambda: solve(jnp.concatenate([queue @ prototypes, scores]))[queue.shape[0]:]
    return jax.lax.cond(use_queue, with_queue, lambda: solve(scores))

  return jax.shard_map(per_device, mesh=run.mesh, in_specs=(spec, spec, P(), P()),
                       out_specs=spec)(scores, queue, prototypes, use_queue)


def loss(params, state, batch, rng, run):
  s = run.config.swav
  forward = common.Forward(run, params, state["batch_stats"], rng)
  # As SwAV does: the backbone once per resolution, its BN over that resolution's crops;
  # the head once over every crop, so the projector's BN normalises them together.
  features = []
  for name in ("global", "local"):
    images, count = _crops(batch, name)
    if count:
      encoded = forward(images, method=SwAVModel.encode)
      features.append(encoded.reshape(-1, count, encoded.shape[-1]))
  num_global, num_crops = features[0].shape[1], sum(f.shape[1] for f in features)
  features = jnp.concatenate(features, axis=1)  # [B, crops, d]: each example's crops adjacent
  z, scores = forward(features.reshape(-1, features.shape[-1]), method=SwAVModel.head)
  z = z.reshape(-1, num_crops, z.shape[-1])[:, :num_global]
  scores = scores.reshape(-1, num_crops, s.num_prototypes)
  scores = [scores[:, i] for i in range(num_crops)]

  method_state = state["method_state"]
  queue_on = s.queue_size > 0
  use_queue = queue_on and method_state["queue_count"] >= s.queue_size
  prototypes = jax.lax.stop_gradient(params["prototypes"]["kernel"])
  value, entropy = 0.0, 0.0
  for i in range(NUM_ASSIGNED):
    if queue_on:
      codes = _codes(run, scores[i], method_state["queue"][i], prototypes, use_queue)
    else:
      codes = _codes(run, scores[i])
    entropy += -jnp.mean(jnp.sum(codes * jnp.log(codes + 1e-12), axis=1)) / NUM_ASSIGNED
    predictions = [losses.swapped_prediction(scores[v], codes, temperature=s.temperature)
                   for v in range(len(scores)) if v != i]
    value += sum(predictions) / (len(predictions) * NUM_ASSIGNED)

  if queue_on:  # newest first; filling starts at queue_start_epochs
    filling = state["step"] >= int(s.queue_start_epochs * run.steps_per_epoch)
    newest = jax.lax.stop_gradient(z[:, :NUM_ASSIGNED].transpose(1, 0, 2))
    shifted = jnp.concatenate([newest, method_state["queue"]], axis=1)[:, :s.queue_size]
    method_state = {
        "queue": jnp.where(filling, shifted, method_state["queue"]),
        "queue_count": method_state["queue_count"] + filling * newest.shape[1]}
  metrics = {"embedding_std": losses.embedding_std(z[:, 0]), "code_entropy": entropy}
  if queue_on:
    metrics["queue_in_use"] = use_queue.astype(jnp.float32)
  return methods.LossResult(value, metrics, forward.batch_stats, method_state,
                            features[:, 0])


METHOD = methods.register(methods.Method(
    name="swav", config=config, views=multicrop_views, create_model=create_model, loss=loss,
    tiny=tiny, check=check, init_state=init_state, after_update=after_update,
    param_groups={"prototypes": methods.group(r"^prototypes/", frozen_epochs=1.0)}))
