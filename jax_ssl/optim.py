"""Optimizers, learning-rate scaling and schedules, built from `config.optim`."""
import math

import jax
import jax.numpy as jnp
import optax

OPTIMIZERS = ("lars", "sgd", "adamw")
LR_SCALINGS = ("linear", "sqrt", "none")
EMA_SCHEDULES = ("constant", "cosine")


def scaled_learning_rate(optim_config, global_batch_size):
  """The peak learning rate for a global batch.

  linear: base_lr * batch / base_batch_size (Goyal et al.; SimCLR's 0.3 x B/256).
  sqrt:   base_lr * sqrt(batch), SimCLR's alternative (0.075 x sqrt(B)).
  """
  scaling = optim_config.lr_scaling
  if scaling == "linear":
    return optim_config.base_lr * global_batch_size / optim_config.base_batch_size
  if scaling == "sqrt":
    return optim_config.base_lr * math.sqrt(global_batch_size)
  return optim_config.base_lr


def warmup_cosine(peak_lr, warmup_steps, total_steps, end_lr=0.0):
  """Linear warm-up from 0 to `peak_lr`, then cosine decay to `end_lr` at `total_steps`."""
  warmup_steps = min(warmup_steps, total_steps)
  if warmup_steps == total_steps:
    return optax.linear_schedule(0.0, peak_lr, max(warmup_steps, 1))
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=peak_lr, warmup_steps=warmup_steps,
      decay_steps=total_steps, end_value=end_lr)


def decay_mask(params):
  """True for weights that take weight decay and LARS adaptation.

  Only matrices and conv kernels qualify: every bias and every BatchNorm scale
  and offset is 1-D, and SimCLR, BYOL and MoCo v3 all exclude them.
  """
  return jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(optim_config, schedule):
  name = optim_config.name
  if name == "lars":
    return optax.lars(
        schedule, weight_decay=optim_config.weight_decay, weight_decay_mask=decay_mask,
        trust_coefficient=optim_config.trust_coefficient, eps=0.0,
        trust_ratio_mask=decay_mask, momentum=optim_config.momentum,
        nesterov=optim_config.nesterov)
  if name == "sgd":
    return optax.chain(
        optax.add_decayed_weights(optim_config.weight_decay, mask=decay_mask),
        optax.sgd(schedule, momentum=optim_config.momentum, nesterov=optim_config.nesterov))
  if name == "adamw":
    return optax.adamw(schedule, weight_decay=optim_config.weight_decay, mask=decay_mask)
  raise ValueError(f"config.optim.name={name!r} is not an optimizer; expected one of {OPTIMIZERS}")


def ema_momentum(step, total_steps, base, schedule="cosine"):
  """The target network's EMA rate at `step`.

  constant: `base` (MoCo v2's 0.999).
  cosine:   1 - (1 - base) * (cos(pi * step / total_steps) + 1) / 2, rising
            from `base` to 1 (BYOL; MoCo v3 with per-step epochs).
  """
  if schedule == "constant":
    return jnp.asarray(base, jnp.float32)
  progress = jnp.minimum(step / total_steps, 1.0)
  return 1.0 - (1.0 - base) * (jnp.cos(jnp.pi * progress) + 1.0) / 2.0


def ema_update(target, online, momentum):
  """target <- momentum * target + (1 - momentum) * online, leaf by leaf."""
  return optax.incremental_update(online, target, 1.0 - momentum)



def frozen_for(inner, num_steps):
  """`inner`, except that its first `num_steps` updates are zero and leave its state as it was.

  What SwAV does to its prototypes in the first epoch: no gradient step, no
  weight decay, no momentum, as if the parameters were not in the optimizer.
  """

  def init(params):
    return inner.init(params), jnp.zeros([], jnp.int32)

  def update(updates, state, params=None):
    inner_state, count = state
    new_updates, new_inner_state = inner.update(updates, inner_state, params)
    frozen = count < num_steps
    new_updates = jax.tree.map(lambda u: jnp.where(frozen, jnp.zeros_like(u), u), new_updates)
    new_inner_state = jax.tree.map(lambda old, new: jnp.where(frozen, old, new), inner_state,
                                   new_inner_state)
    return new_updates, (new_inner_state, count + 1)

  return optax.GradientTransformation(init, update)
