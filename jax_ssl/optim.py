"""Optimizers, learning-rate scaling and schedules, built from `config.optim`."""
import math
import re

import jax
import jax.numpy as jnp
import ml_collections
import optax

OPTIMIZERS = ("lars", "larc", "sgd", "adamw")
LR_SCALINGS = ("linear", "sqrt", "none")
EMA_SCHEDULES = ("constant", "cosine")
WEIGHT_DECAY_SCHEDULES = ("constant", "cosine")
# The optimizers whose weight decay may follow a schedule (optax's add_decayed_weights).
SCHEDULED_DECAY_OPTIMIZERS = ("lars", "sgd", "adamw")


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


def warmup_cosine(peak_lr, warmup_steps, total_steps, end_lr=0.0, start_lr=0.0):
  """Linear warm-up from `start_lr` to `peak_lr`, then cosine decay to `end_lr` at
  `total_steps`."""
  warmup_steps = min(warmup_steps, total_steps)
  if warmup_steps == total_steps:
    return optax.linear_schedule(start_lr, peak_lr, max(warmup_steps, 1))
  return optax.warmup_cosine_decay_schedule(
      init_value=start_lr, peak_value=peak_lr, warmup_steps=warmup_steps,
      decay_steps=total_steps, end_value=end_lr)


def cosine_ramp(start, end, total_steps):
  """step -> from `start` at step 0 to `end` at `total_steps` on a half cosine, then `end`
  (DINO's cosine_scheduler without warm-up, which it uses for the weight decay)."""
  def value(step):
    progress = jnp.minimum(step / max(total_steps, 1), 1.0)
    return end + (start - end) * (jnp.cos(jnp.pi * progress) + 1.0) / 2.0
  return value


def weight_decay_schedule(optim_config, total_steps):
  """`config.optim.weight_decay`, constant or (weight_decay_schedule='cosine') rising or
  falling to `weight_decay_end` over the run's `total_steps`: a float or a schedule."""
  if optim_config.get("weight_decay_schedule", "constant") == "constant":
    return optim_config.weight_decay
  return cosine_ramp(optim_config.weight_decay, optim_config.weight_decay_end, total_steps)


def clip_per_tensor(max_norm, eps=1e-6):
  """Each gradient tensor on its own scaled to a norm of at most `max_norm`, as DINO's
  utils.clip_gradients: g * min(1, max_norm / (|g| + eps)). Unlike optax's
  clip_by_global_norm, one large gradient does not shrink the others."""
  def clip(updates, params=None):
    del params
    def one(g):
      scale = max_norm / (jnp.linalg.norm(g) + eps)
      return jnp.where(scale < 1.0, g * scale, g)
    return jax.tree.map(one, updates)
  return optax.stateless(clip)


def decay_mask(params):
  """True for weights that take weight decay and LARS adaptation.

  Only matrices and conv kernels qualify: every bias and every BatchNorm scale
  and offset is 1-D, and SimCLR, BYOL and MoCo v3 all exclude them.
  """
  return jax.tree.map(lambda p: p.ndim > 1, params)


def _constant_mask(value):
  return lambda params: jax.tree.map(lambda _: value, params)


def _mask(optim_config, field, decay):
  """Which parameters take weight decay (field 'exclude_from_decay') or trust-ratio
  scaling ('exclude_from_trust_ratio'): the weights `decay_mask` picks while the field is
  True, every parameter when it is False, none with decay=False (a group without decay)."""
  if not decay:
    return _constant_mask(False)
  return decay_mask if optim_config.get(field, True) else _constant_mask(True)


# ------------------------------------------------ layer-wise lr decay ----
# A ViT parameter's layer (BEiT's and MAE's lr_decay.py): the embeddings 0, block i
# i + 1, the rest (final norm, classifier) depth + 1.
_EMBEDDINGS = re.compile(r"(^|/)(cls_token|pos_embed|patch_embed)(/|$)")
_BLOCK = re.compile(r"(^|/)blocks_(\d+)/")


def layer_of(path, depth):
  block = _BLOCK.search(path)
  if block:
    return int(block.group(2)) + 1
  return 0 if _EMBEDDINGS.search(path) else depth + 1


def layer_scales(params, decay):
  """Each parameter's learning-rate multiplier decay^(depth + 1 - layer): the head at the
  full rate, each block below it `decay` times its successor's."""
  paths = [param_path(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)]
  depth = 1 + max((int(m.group(2)) for m in map(_BLOCK.search, paths) if m), default=-1)
  return jax.tree_util.tree_map_with_path(
      lambda path, _: decay ** (depth + 1 - layer_of(param_path(path), depth)), params)


def scale_by_layer(decay):
  """Multiplies each update by its layer's scale: with the learning rate and decoupled
  weight decay already in the update, the same as scaling that parameter's learning rate
  (its weight decay included, as torch's AdamW does per parameter group)."""
  def init(params):
    del params
    return optax.EmptyState()

  def update(updates, state, params):
    return jax.tree.map(lambda u, s: u * s, updates, layer_scales(params, decay)), state

  return optax.GradientTransformation(init, update)


def make_optimizer(optim_config, schedule, decay=True, weight_decay=None):
  """The optimizer of `config.optim`. `optim.exclude_from_decay` and
  `optim.exclude_from_trust_ratio` (both True by default) keep biases and BN parameters
  out of weight decay and LARS/LARC adaptation; decay=False keeps every parameter out.
  `weight_decay` (a float or a schedule, see weight_decay_schedule) replaces
  `optim.weight_decay`; `optim.grad_clip_per_tensor` > 0 clips each gradient first."""
  tx = _optimizer(optim_config, schedule, decay, weight_decay)
  max_norm = optim_config.get("grad_clip_per_tensor", 0.0)
  tx = optax.chain(clip_per_tensor(max_norm), tx) if max_norm else tx
  # optim.layer_decay < 1 scales each ViT layer's rate (MAE's fine-tuning).
  layer_decay = optim_config.get("layer_decay", 1.0)
  return tx if layer_decay == 1.0 else optax.chain(tx, scale_by_layer(layer_decay))


def _optimizer(optim_config, schedule, decay, weight_decay):
  name = optim_config.name
  if weight_decay is None:
    if optim_config.get("weight_decay_schedule", "constant") != "constant":
      raise ValueError("config.optim.weight_decay_schedule needs the run's length: build the "
                       "optimizer with make_grouped_optimizer(..., total_steps=...)")
    weight_decay = optim_config.weight_decay
  elif callable(weight_decay) and name not in SCHEDULED_DECAY_OPTIMIZERS:
    raise ValueError(f"config.optim.weight_decay_schedule={optim_config.weight_decay_schedule!r}"
                     f" is invalid with config.optim.name={name!r}: expected one of "
                     f"{SCHEDULED_DECAY_OPTIMIZERS}")
  decay_params = _mask(optim_config, "exclude_from_decay", decay)
  trust_params = _mask(optim_config, "exclude_from_trust_ratio", decay)
  if name == "lars":
    return optax.lars(
        schedule, weight_decay=weight_decay, weight_decay_mask=decay_params,
        trust_coefficient=optim_config.trust_coefficient, eps=0.0,
        trust_ratio_mask=trust_params, momentum=optim_config.momentum,
        nesterov=optim_config.nesterov)
  if name == "larc":
    return optax.chain(
        scale_by_larc(weight_decay, optim_config.trust_coefficient,
                      decay_params, trust_params),
        optax.trace(decay=optim_config.momentum, nesterov=optim_config.nesterov),
        optax.scale_by_learning_rate(schedule))
  if name == "sgd":
    return optax.chain(
        optax.add_decayed_weights(weight_decay, mask=decay_params),
        optax.sgd(schedule, momentum=optim_config.momentum, nesterov=optim_config.nesterov))
  if name == "adamw":
    return optax.adamw(schedule, b2=optim_config.get("adam_beta2", 0.999),
                       weight_decay=weight_decay, mask=decay_params)
  raise ValueError(f"config.optim.name={name!r} is not an optimizer; expected one of {OPTIMIZERS}")


LARC_EPS = 1e-8  # apex LARC's default


def scale_by_larc(weight_decay, trust_coefficient, decay_params, trust_params):
  """SGD's gradient as apex's LARC wrapper (clip=False) hands it to SGD, for SwAV.

  For a parameter p with gradient g, both norms nonzero and both treatments on:
  g <- trust * |p| / (|g| + wd |p| + eps) * (g + wd p). Unlike LARS the norms are added,
  not taken of the decayed gradient; a parameter or gradient of norm 0 passes unchanged,
  undecayed (a parameter kept out of the trust ratio takes plain SGD with its decay).
  Momentum and the learning rate follow (PyTorch's SGD: buffer, then lr).
  """

  def init(params):
    del params
    return optax.EmptyState()

  def update(updates, state, params):
    def one(g, p, decays, trusts):
      wd = weight_decay if decays else 0.0
      if not trusts:  # plain SGD: the optimizer's own weight decay
        return g + wd * p
      p_norm, g_norm = jnp.linalg.norm(p), jnp.linalg.norm(g)
      ratio = trust_coefficient * p_norm / (g_norm + wd * p_norm + LARC_EPS)
      return jnp.where((p_norm > 0) & (g_norm > 0), ratio * (g + wd * p), g)

    return jax.tree.map(one, updates, params, decay_params(params), trust_params(params)), state

  return optax.GradientTransformation(init, update)


# ------------------------------------------------------- parameter groups ----
DEFAULT_GROUP = "default"
# How `config.optim.groups.<name>` may treat a method's parameter group.
GROUP_FIELDS = {
    "frozen_epochs": 0.0,   # no step, no decay, no momentum for this many epochs
    "constant_lr": False,   # the peak learning rate throughout, no warm-up or decay
    "lr_multiplier": 1.0,   # times the run's learning rate
    "weight_decay": True,   # False: neither weight decay nor LARS adaptation
}


def group_config(**treatment):
  """config.optim.groups.<name>: GROUP_FIELDS with `treatment` changed."""
  unknown = sorted(set(treatment) - set(GROUP_FIELDS))
  if unknown:
    raise ValueError(f"parameter group fields {unknown} are unknown; expected some of "
                     f"{list(GROUP_FIELDS)}")
  return ml_collections.ConfigDict({**GROUP_FIELDS, **treatment})


def param_path(path):
  """A tree path as 'backbone/layer1_0/conv1/kernel'."""
  return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def param_labels(patterns):
  """params -> the same tree of group names: the first group whose regex matches a
  parameter's path (re.search), else 'default'."""
  compiled = [(name, re.compile(pattern)) for name, pattern in patterns.items()]

  def labels(params):
    def label(path, _):
      where = param_path(path)
      return next((name for name, regex in compiled if regex.search(where)), DEFAULT_GROUP)
    return jax.tree_util.tree_map_with_path(label, params)
  return labels


def _group_schedule(schedule, peak_lr, treatment):
  multiplier = treatment.lr_multiplier
  if treatment.constant_lr:
    return peak_lr * multiplier
  if multiplier == 1.0:
    return schedule
  if callable(schedule):
    return lambda step: multiplier * schedule(step)
  return multiplier * schedule


def _delayed(schedule, steps):
  """A schedule read `steps` later; a constant stays as it is."""
  return (lambda count: schedule(count + steps)) if callable(schedule) else schedule


def make_grouped_optimizer(optim_config, schedule, *, peak_lr, patterns, steps_per_epoch,
                           total_steps=0):
  """The run's optimizer: `config.optim` for the default group, and for each of a
  method's parameter groups (`patterns`: {group: regex}) that optimizer with the group's
  treatment from `config.optim.groups`. One optax.multi_transform entry per group, so
  a group's optimizer state can be reset on its own (`reset_groups`). `total_steps` is
  the run's length, over which a scheduled weight decay runs."""
  weight_decay = weight_decay_schedule(optim_config, total_steps)
  if not patterns:
    return make_optimizer(optim_config, schedule, weight_decay=weight_decay)
  transforms = {DEFAULT_GROUP: make_optimizer(optim_config, schedule,
                                              weight_decay=weight_decay)}
  for name in patterns:
    treatment = optim_config.groups[name]
    frozen_steps = round(treatment.frozen_epochs * steps_per_epoch)
    group_schedule = _group_schedule(schedule, peak_lr, treatment)
    group_decay = weight_decay
    if frozen_steps:
      # A frozen group's optimizer state, its step count included, waits out the freeze;
      # its learning rate and weight decay must not: they follow the run's step, as the
      # other groups' do.
      group_schedule = _delayed(group_schedule, frozen_steps)
      group_decay = _delayed(weight_decay, frozen_steps)
    tx = make_optimizer(optim_config, group_schedule, decay=treatment.weight_decay,
                        weight_decay=group_decay)
    transforms[name] = frozen_for(tx, frozen_steps) if frozen_steps else tx
  return optax.multi_transform(transforms, param_labels(patterns))


def reset_groups(tx, opt_state, params, groups):
  """`opt_state` with the state of each of `groups` (of a make_grouped_optimizer) as new."""
  fresh = tx.init(params)
  inner = dict(opt_state.inner_states)
  for name in groups:
    inner[name] = fresh.inner_states[name]
  return opt_state._replace(inner_states=inner)


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
