"""MoCo v2 (Chen et al. 2020) and MoCo v3 (Chen, Xie & He 2021), one module.

The key encoder is an EMA of the query encoder and projector.
  v2: `config.moco.queue_size` > 0. Negatives are a queue of past keys,
      filled with the keys of the whole global batch after each step; the
      loss is one-directional (view 1 queries, view 2 keys); the key encoder
      runs on a batch shuffled across devices with per-device BN (shuffle-BN).
  v3: queue_size 0. Negatives are the other keys of the global batch; the
      loss is symmetric; the query side has a prediction head; the momentum
      rises from its base to 1 on a cosine schedule.
"""
import functools

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from jax_ssl import config as config_lib, losses, methods, models, optim, parallel
from jax_ssl.methods import common


def create_model(config):
  m = config.moco
  projector = common.mlp_head(config, m.proj_hidden_dims, m.proj_dim, use_bn=m.proj_bn,
                              last_bn=m.proj_bn, last_bn_scale=False)
  predictor = None
  if m.pred_hidden_dims:
    predictor = common.mlp_head(config, m.pred_hidden_dims, m.proj_dim)
  return common.EncoderWithHeads(models.create_backbone(config.model), projector, predictor)


def check_config(config, num_devices):
  del num_devices
  m, batch = config.moco, config.train.batch_size
  config_lib.require(m.temperature > 0, "config.moco.temperature", m.temperature, "> 0")
  config_lib.require(0 <= m.momentum <= 1, "config.moco.momentum", m.momentum, "in [0, 1]")
  config_lib.require(m.momentum_schedule in optim.EMA_SCHEDULES, "config.moco.momentum_schedule",
           m.momentum_schedule, f"one of {optim.EMA_SCHEDULES}")
  config_lib.require(m.queue_size >= 0 and m.queue_size % batch == 0, "config.moco.queue_size",
           m.queue_size, f"0 (in-batch negatives) or a multiple of train.batch_size={batch}")
  config_lib.require(not (m.queue_size and m.pred_hidden_dims), "config.moco.pred_hidden_dims",
           m.pred_hidden_dims, "() with a queue (MoCo v2 has no predictor)")


def init_method_state(config, variables):
  state = {"target": common.init_target(variables)}
  if config.moco.queue_size:
    # Random unit keys, as MoCo starts; they are all replaced after K / B steps.
    queue = jax.random.normal(jax.random.PRNGKey(config.seed + 1),
                              (config.moco.queue_size, config.moco.proj_dim))
    state.update(queue=losses.l2_normalize(queue), queue_index=jnp.zeros([], jnp.int32))
  return state


def momentum(config, step, total_steps):
  m = config.moco
  # The key encoder update before step k + 1 uses m(k + 1), as MoCo v3 does.
  return optim.ema_momentum(step + 1, total_steps, m.momentum, m.momentum_schedule)


def after_update(state, run):
  return common.ema_target(state, momentum(run.config, state["step"], run.total_steps))


adapt_optimizer = methods.same_optimizer


def _infonce(run, q, k, queue=None):
  loss = functools.partial(losses.moco_infonce, temperature=run.config.moco.temperature,
                           queue=queue, axis_name=parallel.DATA_AXIS)
  spec = P(parallel.DATA_AXIS)
  return jax.shard_map(loss, mesh=run.mesh, in_specs=(spec, spec), out_specs=P())(q, k)


def enqueue(method_state, keys):
  """Writes the newest keys over the oldest: a ring buffer of the last K keys."""
  queue, index = method_state["queue"], method_state["queue_index"]
  queue = jax.lax.dynamic_update_slice(queue, keys.astype(queue.dtype), (index, 0))
  return {**method_state, "queue": queue, "queue_index": (index + keys.shape[0]) % len(queue)}


def compute_loss(params, state, batch, rng, run):
  m = run.config.moco
  method_state = state["method_state"]
  online = {"params": params, "batch_stats": state["batch_stats"]}
  target = method_state["target"]
  shuffle_rng = rng if m.shuffle_bn else None
  apply = functools.partial(run.model.apply, train=True, mutable=["batch_stats"])

  if m.queue_size:  # v2: view 1 queries the keys of view 2
    (features, q), updates = apply(online, batch["view1"])
    k, target_stats = common.target_projections(run, target, batch["view2"], shuffle_rng)
    loss = _infonce(run, q, k, method_state["queue"])
    new_method_state = enqueue(method_state, losses.l2_normalize(k))
  else:  # v3: symmetric, each view's queries against the other's keys
    (features, q1), updates = apply(online, batch["view1"])
    (_, q2), updates = apply({"params": params, **updates}, batch["view2"])
    k1, stats = common.target_projections(run, target, batch["view1"], shuffle_rng)
    k2, target_stats = common.target_projections(
        run, {**target, "batch_stats": stats}, batch["view2"], shuffle_rng)
    loss = _infonce(run, q1, k2) + _infonce(run, q2, k1)
    new_method_state = method_state
    q = q1
  if m.scale_loss_by_2t:  # MoCo v3's official loss is 2 tau x InfoNCE
    loss = loss * 2 * m.temperature
  new_target = {**new_method_state["target"], "batch_stats": target_stats}
  changes = {"batch_stats": updates["batch_stats"],
             "method_state": {**new_method_state, "target": new_target}}
  metrics = {"embedding_std": losses.embedding_std(q),
             "momentum": momentum(run.config, state["step"], run.total_steps)}
  return loss, (changes, metrics, features)
