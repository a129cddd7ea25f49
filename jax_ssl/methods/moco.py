"""MoCo v2 (Chen et al. 2020) and MoCo v3 (Chen, Xie & He 2021): `moco_v2` and `moco_v3`.

In both the key encoder is an EMA of the query encoder and projector.
  v2: negatives are a queue of past keys, filled with the keys of the whole global batch
      after each step; the loss is one-directional (view 1 queries, view 2 keys); the key
      encoder runs on a batch shuffled across devices with per-device BN (shuffle-BN);
      constant momentum.
  v3: negatives are the other keys of the global batch; the loss is symmetric; the query
      side has a prediction head; BN in the heads; the momentum rises from its base to 1
      on a cosine; BYOL's augmentations.
"""
import functools

import jax
import jax.numpy as jnp
import ml_collections
from jax.sharding import PartitionSpec as P

from jax_ssl import config as config_lib, losses, methods, models, optim, parallel
from jax_ssl.methods import common


def v2_config():
  return ml_collections.ConfigDict(dict(
      queue_size=65_536,
      temperature=0.2,
      momentum=0.999,            # the key encoder's EMA rate
      proj_hidden_dims=(2048,),
      proj_dim=128,
      shuffle_bn=True,           # key encoder: per-device BN on a shuffled batch
  ))


def v3_config():
  return ml_collections.ConfigDict(dict(
      temperature=1.0,
      momentum=0.99,             # the key encoder's EMA rate at step 0, rising to 1
      proj_hidden_dims=(4096,),
      proj_dim=256,
      pred_hidden_dims=(4096,),
      pred_last_bn=False,        # an affine-free BN on the prediction (MoCo_ViT; not ResNets)
      scale_loss_by_2t=True,     # the official loss is 2 tau x InfoNCE
  ))


def v2_tiny(c):
  c.moco_v2.update(proj_hidden_dims=(64,), proj_dim=32,
                   queue_size=min(c.moco_v2.queue_size, 256))


def v3_tiny(c):
  c.moco_v3.update(proj_hidden_dims=(64,), proj_dim=32, pred_hidden_dims=(64,))


def _check_common(m, section):
  config_lib.require(m.temperature > 0, f"config.{section}.temperature", m.temperature, "> 0")
  config_lib.require(0 <= m.momentum <= 1, f"config.{section}.momentum", m.momentum,
                     "in [0, 1]")


def v2_check(c, num_devices):
  del num_devices
  m, batch = c.moco_v2, c.train.batch_size
  _check_common(m, "moco_v2")
  config_lib.require(m.queue_size > 0 and m.queue_size % batch == 0, "config.moco_v2.queue_size",
                     m.queue_size, f"a positive multiple of train.batch_size={batch}")


def v3_check(c, num_devices):
  del num_devices
  _check_common(c.moco_v3, "moco_v3")


def v2_model(c):
  m = c.moco_v2
  projector = common.mlp_head(c, m.proj_hidden_dims, m.proj_dim, use_bn=False)
  return common.EncoderWithHeads(models.create_backbone(c.model), projector)


def v3_model(c):
  m = c.moco_v3
  projector = common.mlp_head(c, m.proj_hidden_dims, m.proj_dim, last_bn=True,
                              last_bn_scale=False)
  # MoCo v3's linear layers have no bias, its predictor's output included.
  predictor = common.mlp_head(c, m.pred_hidden_dims, m.proj_dim, last_bn=m.pred_last_bn,
                              last_bn_scale=False, output_bias=False)
  return common.EncoderWithHeads(models.create_backbone(c.model), projector, predictor)


def v2_state(run, variables, batch):
  del batch
  m = run.config.moco_v2
  # Random unit keys, as MoCo starts; they are all replaced after K / B steps.
  queue = jax.random.normal(jax.random.PRNGKey(run.config.seed + 1), (m.queue_size, m.proj_dim))
  return {"target": common.init_target(variables), "queue": losses.l2_normalize(queue),
          "queue_index": jnp.zeros([], jnp.int32)}


def target_state(run, variables, batch):
  del run, batch
  return {"target": common.init_target(variables)}


def v2_momentum(config, step, total_steps):
  del step, total_steps
  return jnp.asarray(config.moco_v2.momentum, jnp.float32)


def v3_momentum(config, step, total_steps):
  # The key encoder update before step k + 1 uses m(k + 1), as MoCo v3 does.
  return optim.ema_momentum(step + 1, total_steps, config.moco_v3.momentum, "cosine")


def _after_update(momentum):
  def after_update(params, method_state, step, run):
    rate = momentum(run.config, step, run.total_steps)
    return params, common.ema_target(params, method_state, rate)
  return after_update


def _infonce(run, q, k, temperature, queue=None):
  loss = functools.partial(losses.moco_infonce, temperature=temperature, queue=queue,
                           axis_name=parallel.DATA_AXIS)
  spec = P(parallel.DATA_AXIS)
  return jax.shard_map(loss, mesh=run.mesh, in_specs=(spec, spec), out_specs=P())(q, k)


def enqueue(method_state, keys):
  """Writes the newest keys over the oldest: a ring buffer of the last K keys."""
  queue, index = method_state["queue"], method_state["queue_index"]
  queue = jax.lax.dynamic_update_slice(queue, keys.astype(queue.dtype), (index, 0))
  return {**method_state, "queue": queue, "queue_index": (index + keys.shape[0]) % len(queue)}


def v2_loss(params, state, batch, rng, run):
  m = run.config.moco_v2
  method_state = state["method_state"]
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, q = forward(batch["view1"])  # view 1 queries the keys of view 2
  k, target_stats = common.target_projections(run, method_state["target"], batch["view2"],
                                              rng if m.shuffle_bn else None)
  value = _infonce(run, q, k, m.temperature, method_state["queue"])
  new_state = enqueue(method_state, losses.l2_normalize(k))
  new_state["target"] = {**new_state["target"], "batch_stats": target_stats}
  metrics = {"embedding_std": losses.embedding_std(q),
             "momentum": v2_momentum(run.config, state["step"], run.total_steps)}
  return methods.LossResult(value, metrics, forward.batch_stats, new_state, features)


def v3_loss(params, state, batch, rng, run):
  m = run.config.moco_v3
  target = state["method_state"]["target"]
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, q1 = forward(batch["view1"])  # each view's queries against the other's keys
  _, q2 = forward(batch["view2"])
  k1, stats = common.target_projections(run, target, batch["view1"])
  k2, stats = common.target_projections(run, {**target, "batch_stats": stats}, batch["view2"])
  value = _infonce(run, q1, k2, m.temperature) + _infonce(run, q2, k1, m.temperature)
  if m.scale_loss_by_2t:
    value = value * 2 * m.temperature
  metrics = {"embedding_std": losses.embedding_std(q1),
             "momentum": v3_momentum(run.config, state["step"], run.total_steps)}
  return methods.LossResult(value, metrics, forward.batch_stats,
                            {"target": {**target, "batch_stats": stats}}, features)


MOCO_V2 = methods.register(methods.Method(
    name="moco_v2", config=v2_config, views=common.two_views, create_model=v2_model,
    loss=v2_loss, tiny=v2_tiny, check=v2_check, init_state=v2_state,
    after_update=_after_update(v2_momentum)))

MOCO_V3 = methods.register(methods.Method(
    name="moco_v3", config=v3_config, views=common.byol_views, augment=common.BYOL_AUGMENT,
    create_model=v3_model, loss=v3_loss, tiny=v3_tiny, check=v3_check,
    init_state=target_state, after_update=_after_update(v3_momentum),
    param_groups=common.PATCH_EMBED_GROUP))
