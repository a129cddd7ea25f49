"""The train state and the update step: pure JAX, shared by the loop and the benchmarks.

The state is one dict: step, params, batch_stats, opt_state, method_state, rng,
skipped_steps (and probe, with the online probe). Every entry is replicated over the
mesh except the pieces of the method state that the method declares sharded
(`Method.state_sharding`, e.g. a memory bank split by rows over 'data'); the step keeps
each entry's layout.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding

from jax_ssl import methods, models, optim, parallel, probe as probe_lib
from jax_ssl.data import transforms, views as views_lib


def make_run(config, mesh, *, steps_per_epoch, total_steps, warmup_steps=0, num_train=0,
             schedule=None):
  """(method, Run, optimizer, schedule) of `config`, as the loop builds them: the
  learning rate scaled to the global batch, warm-up then cosine unless `schedule` is
  given, the method's parameter groups treated as `config.optim.groups` says."""
  method = methods.get(config.method)
  peak_lr = optim.scaled_learning_rate(config.optim, config.train.batch_size)
  if schedule is None:
    schedule = optim.warmup_cosine(peak_lr, warmup_steps, total_steps,
                                   peak_lr * config.optim.final_lr_fraction,
                                   peak_lr * config.optim.warmup_start_fraction)
  run = methods.Run(method.create_model(config), config, mesh, steps_per_epoch, total_steps,
                    num_train)
  tx = optim.make_grouped_optimizer(
      config.optim, schedule, peak_lr=peak_lr, steps_per_epoch=steps_per_epoch,
      total_steps=total_steps,
      patterns={name: pattern for name, (pattern, _) in method.param_groups.items()})
  return method, run, tx, schedule


def example_batch(config, batch_size=2):
  """Shapes and dtypes of the batch a method's loss reads (views after their transforms,
  'label', 'index'), for initialising the model and the method's state."""
  groups = views_lib.view_groups(config.data)
  spec = {"label": jax.ShapeDtypeStruct((batch_size,), jnp.int32),
          "index": jax.ShapeDtypeStruct((batch_size,), jnp.int32)}
  for group in groups:
    shape = ((batch_size, group.count) if group.stacked else (batch_size,))
    spec[group.name] = jax.ShapeDtypeStruct(shape + (group.size, group.size, 3), jnp.float32)
  return jax.eval_shape(lambda batch: transforms.apply(groups, batch, config.seed, 0), spec)


def _init_fn(run, method, tx, batch_spec):
  def init(seed):
    init_rng, state_rng = jax.random.split(jax.random.PRNGKey(seed))
    batch = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), batch_spec)
    variables = method.init_model(run, init_rng, batch)
    params = variables["params"]
    return {
        "step": jnp.zeros((), jnp.int32),
        "params": params,
        "batch_stats": variables.get("batch_stats", {}),
        "opt_state": tx.init(params),
        "method_state": method.init_state(run, variables, batch),
        "rng": state_rng,
        "skipped_steps": jnp.zeros((), jnp.int32),  # see skip_if_nonfinite
    }
  return init


def state_shardings(run, method, state):
  """The sharding of each entry of `state` (arrays or shapes): replicated, except the
  method state's subtrees that the method declares otherwise."""
  replicated = parallel.replicated(run.mesh)
  shardings = jax.tree.map(lambda _: replicated, state)
  shardings["method_state"] = {}
  for key, value in state["method_state"].items():
    spec = method.state_sharding.get(key)
    sharding = replicated if spec is None else NamedSharding(run.mesh, spec)
    shardings["method_state"][key] = jax.tree.map(lambda _, s=sharding: s, value)
  return shardings


def create_state(run, method, tx, batch_spec=None):
  """Initialises the train state on the mesh, each entry with its sharding, without a
  host copy. `batch_spec` defaults to `example_batch(run.config)`."""
  batch_spec = example_batch(run.config) if batch_spec is None else batch_spec
  init = _init_fn(run, method, tx, batch_spec)
  # Most of the state is replicated, so the partitionable threefry buys nothing here, and
  # its initialisers take XLA:CPU minutes to compile for a large model.
  with jax.threefry_partitionable(False):
    shapes = jax.eval_shape(init, run.config.seed)
    return jax.jit(init, static_argnums=0,
                   out_shardings=state_shardings(run, method, shapes))(run.config.seed)


def _merge(state, result_value, key):
  return state[key] if result_value is None else result_value


def make_train_step(run, method, tx, schedule, prepare=None, layout=None):
  """The jitted update step. `prepare(batch, step)`, when given, turns what the host
  sent into the views batch inside the step (augmentation on the devices, view
  transforms; data.device.make_prepare). The new state keeps the shardings of `layout`
  (a state, or its shapes with shardings); by default those `create_state` gives."""
  def train_step(state, batch):
    if prepare is not None:
      batch = prepare(batch, state["step"])
    rng, step_rng = jax.random.split(state["rng"])
    unlabelled = {k: v for k, v in batch.items() if k != "label"}  # labels are the probe's

    def loss_of(params):
      result = method.loss(params, state, unlabelled, step_rng, run)
      return result.loss, result

    (loss, result), grads = jax.value_and_grad(loss_of, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    method_state = _merge(state, result.method_state, "method_state")
    if method.after_update is not None:
      params, method_state = method.after_update(params, method_state, state["step"], run)
    new_state = {**state, "params": params, "opt_state": opt_state, "rng": rng,
                 "batch_stats": _merge(state, result.batch_stats, "batch_stats"),
                 "method_state": method_state, "step": state["step"] + 1}
    step_metrics = {**result.metrics, "loss": loss, "learning_rate": schedule(state["step"]),
                    "grad_norm": optax.global_norm(grads), "param_norm": optax.global_norm(params)}
    if "probe" in state:
      if result.features is None:
        raise ValueError(f"config.eval.online_probe=True needs features from the loss of "
                         f"{run.config.method} (LossResult.features), which gives none")
      new_state["probe"], probe_metrics = probe_lib.online_step(
          state["probe"], result.features, batch["label"], run)
      step_metrics.update(probe_metrics)
    if run.config.train.skip_nonfinite_steps:
      new_state, step_metrics = skip_if_nonfinite(state, new_state, step_metrics)
    return new_state, step_metrics

  if layout is None:
    init = _init_fn(run, method, tx, example_batch(run.config))
    with jax.threefry_partitionable(False):
      layout = state_shardings(run, method, jax.eval_shape(init, run.config.seed))
  else:
    layout = jax.tree.map(lambda x: x.sharding, layout)
  return jax.jit(train_step, donate_argnums=0,
                 out_shardings=(layout, parallel.replicated(run.mesh)))


def skip_if_nonfinite(state, new_state, step_metrics):
  """Undoes a step whose loss or gradients hold NaN or Inf, and counts it.

  Parameters, optimizer, BN and method state stay as they were; the step counter and
  the rng move on, so the run keeps its schedule and its data order.
  """
  finite = jnp.isfinite(step_metrics["loss"]) & jnp.isfinite(step_metrics["grad_norm"])
  moving_on = ("step", "rng", "skipped_steps")
  kept = {key: jax.tree.map(lambda new, old: jnp.where(finite, new, old), value, state[key])
          for key, value in new_state.items() if key not in moving_on}
  skipped = state["skipped_steps"] + jnp.where(finite, 0, 1).astype(jnp.int32)
  return ({**new_state, **kept, "skipped_steps": skipped},
          {**step_metrics, "skipped_steps": skipped,
           "param_norm": optax.global_norm(kept["params"])})


def make_encoder(encoder, stages=False):
  """state -> (images -> features), the method's evaluation encoder in inference mode; with
  `stages`, images -> {stage: pooled features} of each of its ResNet stages."""
  apply = jax.jit(functools.partial(models.stage_features, encoder.module) if stages else
                  lambda variables, images: encoder.module.apply(variables, images, train=False))

  def encoder_of(state):
    variables = encoder.variables(state["params"], state["batch_stats"])
    return lambda images: apply(variables, images)

  return encoder_of


def encoder_feature_dim(encoder, config):
  """Features per example of the method's encoder, without computing anything."""
  size = config.data.image_size
  images = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  variables = jax.eval_shape(lambda: encoder.module.init(jax.random.key(0), jnp.zeros(
      images.shape), train=False))
  return int(np.prod(jax.eval_shape(
      lambda v, x: encoder.module.apply(v, x, train=False), variables, images).shape[1:]))


def make_epoch_start(run, method, tx):
  """(state, epoch, context) -> state after the method's epoch-start hook, or None when
  the method has none. The hook's new parameters and method state keep their layout, and
  the optimizer state of each group it names starts afresh."""
  if method.epoch_start is None:
    return None

  def merge(state, params, method_state, reset):
    opt_state = state["opt_state"]
    if reset:
      opt_state = optim.reset_groups(tx, opt_state, params, reset)
    return {**state, "params": params, "method_state": method_state, "opt_state": opt_state}

  compiled = {}

  def epoch_start(state, epoch, context):
    update = method.epoch_start(state, epoch, context)
    params = _merge(state, update.params, "params")
    method_state = _merge(state, update.method_state, "method_state")
    if "merge" not in compiled:  # the state's layout does not change from epoch to epoch
      layout = jax.tree.map(lambda x: x.sharding, state)
      compiled["merge"] = jax.jit(merge, static_argnums=3, out_shardings=layout)
    return compiled["merge"](state, params, method_state, tuple(update.reset_groups))

  return epoch_start
