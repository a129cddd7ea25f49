"""SwAV (Caron et al. 2020): swapped prediction of Sinkhorn codes over prototypes.

Every crop's normalised projection is scored against K unit-norm prototypes.
Codes come from the two first global crops by Sinkhorn-Knopp over the
global batch (and a queue of past projections once it is full); each of them
is predicted from every other crop. The prototypes are re-normalised after
every step and are frozen (no step, no decay, no momentum) for the first
epochs.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import PartitionSpec as P

from jax_ssl import losses, models, optim, parallel, sinkhorn
from jax_ssl.methods import common

NUM_ASSIGNED = 2  # crops whose codes are targets: SwAV's crops_for_assign = [0, 1]


def unit_columns_init(key, shape, dtype=jnp.float32):
  return losses.l2_normalize(jax.random.normal(key, shape, dtype), axis=0)


class SwAVModel(nn.Module):
  backbone: nn.Module
  projector: nn.Module
  num_prototypes: int

  @nn.compact
  def __call__(self, x, train: bool):
    features = self.backbone(x, train=train)
    z = losses.l2_normalize(self.projector(features, train=train))
    prototypes = nn.Dense(self.num_prototypes, use_bias=False, kernel_init=unit_columns_init,
                          name="prototypes")
    return features, (z, prototypes(z))


def create_model(config):
  s = config.swav
  projector = common.mlp_head(config, s.proj_hidden_dims, s.proj_dim)
  return SwAVModel(models.create_backbone(config.model), projector, s.num_prototypes)


def check_config(config, num_devices):
  s = config.swav
  checks = [
      ("temperature", s.temperature, s.temperature > 0, "> 0"),
      ("epsilon", s.epsilon, s.epsilon > 0, "> 0"),
      ("sinkhorn_iters", s.sinkhorn_iters, s.sinkhorn_iters >= 1, ">= 1"),
      ("num_prototypes", s.num_prototypes, s.num_prototypes >= 2, ">= 2"),
      ("freeze_prototypes_epochs", s.freeze_prototypes_epochs,
       s.freeze_prototypes_epochs >= 0, ">= 0"),
      # Each device runs Sinkhorn on its own share of the queue.
      ("queue_size", s.queue_size, s.queue_size >= 0 and s.queue_size % num_devices == 0,
       f"0 (no queue) or a multiple of the device count {num_devices}"),
  ]
  for field, value, ok, expected in checks:
    if not ok:
      raise ValueError(f"config.swav.{field}={value!r} is invalid: expected {expected}")
  if config.data.augment.recipe != "multicrop":
    raise ValueError(f"config.data.augment.recipe={config.data.augment.recipe!r} is invalid "
                     "for swav: expected 'multicrop'")


def init_method_state(config, variables):
  del variables
  s = config.swav
  if not s.queue_size:
    return {}
  return {"queue": jnp.zeros((NUM_ASSIGNED, s.queue_size, s.proj_dim)),
          "queue_count": jnp.zeros([], jnp.int32)}


def adapt_optimizer(tx, run):
  """Prototypes get their own copy of the optimizer, frozen for the first epochs."""
  frozen_steps = int(run.config.swav.freeze_prototypes_epochs * run.steps_per_epoch)
  def labels(params):
    return {name: jax.tree.map(lambda _, label=name == "prototypes": label, subtree)
            for name, subtree in params.items()}

  return optax.multi_transform({True: optim.frozen_for(tx, frozen_steps), False: tx}, labels)


def after_update(state, run):
  del run
  params = state["params"]
  kernel = losses.l2_normalize(params["prototypes"]["kernel"], axis=0)
  return {**state, "params": {**params, "prototypes": {"kernel": kernel}}}


def _crops(batch, key):
  """[B, n, S, S, 3] -> [B * n, S, S, 3], each example's crops adjacent."""
  crops = batch[key]
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


def compute_loss(params, state, batch, rng, run):
  del rng
  s = run.config.swav
  apply = functools.partial(run.model.apply, train=True, mutable=["batch_stats"])
  images, num_global = _crops(batch, "global")
  (features, (z, scores)), updates = apply(
      {"params": params, "batch_stats": state["batch_stats"]}, images)
  scores = [scores.reshape(-1, num_global, s.num_prototypes)[:, i] for i in range(num_global)]
  z = z.reshape(-1, num_global, z.shape[-1])
  if batch["local"].shape[1]:  # one forward per resolution, as SwAV does
    images, num_local = _crops(batch, "local")
    (_, (_, local)), updates = apply({"params": params, **updates}, images)
    local = local.reshape(-1, num_local, s.num_prototypes)
    scores += [local[:, i] for i in range(num_local)]

  method_state = state["method_state"]
  queue_on = s.queue_size > 0
  use_queue = queue_on and method_state["queue_count"] >= s.queue_size
  prototypes = jax.lax.stop_gradient(params["prototypes"]["kernel"])
  loss, entropy = 0.0, 0.0
  for i in range(NUM_ASSIGNED):
    if queue_on:
      codes = _codes(run, scores[i], method_state["queue"][i], prototypes, use_queue)
    else:
      codes = _codes(run, scores[i])
    entropy += -jnp.mean(jnp.sum(codes * jnp.log(codes + 1e-12), axis=1)) / NUM_ASSIGNED
    predictions = [losses.swapped_prediction(scores[v], codes, temperature=s.temperature)
                   for v in range(len(scores)) if v != i]
    loss += sum(predictions) / (len(predictions) * NUM_ASSIGNED)

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
  return loss, ({"batch_stats": updates["batch_stats"], "method_state": method_state},
                metrics, features.reshape(-1, num_global, features.shape[-1])[:, 0])
