"""The train state and the update step: pure JAX, shared by the loop and the benchmarks."""
import jax
import jax.numpy as jnp
import optax

from jax_ssl import parallel, probe as probe_lib


def create_state(run, method, tx):
  """Initialises the train state, replicated on every device, without a host copy."""
  model, config = run.model, run.config
  size = config.data.image_size

  def init(seed):
    init_rng, state_rng = jax.random.split(jax.random.PRNGKey(seed))
    variables = model.init(init_rng, jnp.zeros((2, size, size, 3)), train=False)
    params = variables["params"]
    return {
        "step": jnp.zeros((), jnp.int32),
        "params": params,
        "batch_stats": variables.get("batch_stats", {}),
        "opt_state": tx.init(params),
        "method_state": method.init_method_state(config, variables),
        "rng": state_rng,
        "skipped_steps": jnp.zeros((), jnp.int32),  # see skip_if_nonfinite
    }

  # The state is replicated, so the partitionable threefry buys nothing here, and
  # its initialisers take XLA:CPU minutes to compile for a large model.
  with jax.threefry_partitionable(False):
    return jax.jit(init, static_argnums=0,
                   out_shardings=parallel.replicated(run.mesh))(config.seed)


def make_train_step(run, method, tx, schedule, prepare=None):
  """The jitted update step. `prepare(batch, step)`, when given, turns what the host
  sent into the views batch inside the step (augmentation on the devices, data.device)."""
  def train_step(state, batch):
    if prepare is not None:
      batch = prepare(batch, state["step"])
    rng, step_rng = jax.random.split(state["rng"])
    unlabelled = {k: v for k, v in batch.items() if k != "label"}  # labels are the probe's

    def loss_of(params):
      return method.compute_loss(params, state, unlabelled, step_rng, run)

    (loss, (changes, step_metrics, features)), grads = jax.value_and_grad(loss_of, has_aux=True)(
        state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    new_state = {**state, **changes, "params": params, "opt_state": opt_state, "rng": rng}
    new_state = method.after_update(new_state, run)
    new_state["step"] = state["step"] + 1
    step_metrics = {**step_metrics, "loss": loss, "learning_rate": schedule(state["step"]),
                    "grad_norm": optax.global_norm(grads), "param_norm": optax.global_norm(params)}
    if "probe" in state:
      new_state["probe"], probe_metrics = probe_lib.online_step(
          state["probe"], features, batch["label"], run)
      step_metrics.update(probe_metrics)
    if run.config.train.skip_nonfinite_steps:
      new_state, step_metrics = skip_if_nonfinite(state, new_state, step_metrics)
    return new_state, step_metrics

  replicated = parallel.replicated(run.mesh)
  return jax.jit(train_step, donate_argnums=0,
                 out_shardings=(replicated, replicated))


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


def make_encoder(model):
  """Backbone features in inference mode (running BN statistics)."""
  apply = jax.jit(lambda variables, images: model.apply(variables, images, train=False)[0])

  def encoder_of(state):
    variables = {"params": state["params"], "batch_stats": state["batch_stats"]}
    return lambda images: apply(variables, images)

  return encoder_of
