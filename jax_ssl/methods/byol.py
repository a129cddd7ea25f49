"""BYOL (Grill et al. 2020): an online network predicts an EMA target's projection.

Online: encoder -> projector -> predictor. Target: an EMA of encoder and
projector whose rate rises from tau_base to 1 on a cosine schedule. The loss
is 2 - 2 cos(prediction, target projection), summed over both directions.
Each view gets its own forward pass, so BatchNorm sees one view at a time.
"""
import functools

from jax_ssl import losses, methods, models, optim
from jax_ssl.methods import common


def create_model(config):
  b = config.byol
  projector = common.mlp_head(config, b.proj_hidden_dims, b.proj_dim)
  predictor = common.mlp_head(config, b.pred_hidden_dims, b.proj_dim)
  return common.EncoderWithHeads(models.create_backbone(config.model), projector, predictor)


def check_config(config, num_devices):
  del num_devices
  tau = config.byol.tau_base
  if not 0 <= tau <= 1:
    raise ValueError(f"config.byol.tau_base={tau!r} is invalid: expected in [0, 1]")


def init_method_state(config, variables):
  del config
  return {"target": common.init_target(variables)}


def tau(config, step, total_steps):
  return optim.ema_momentum(step, total_steps, config.byol.tau_base, "cosine")


def after_update(state, run):
  # BYOL updates the target after the online step k with tau(k).
  return common.ema_target(state, tau(run.config, state["step"], run.total_steps))


adapt_optimizer = methods.same_optimizer


def compute_loss(params, state, batch, rng, run):
  del rng
  apply = functools.partial(run.model.apply, train=True, mutable=["batch_stats"])
  (features, p1), updates = apply({"params": params, "batch_stats": state["batch_stats"]},
                                  batch["view1"])
  (_, p2), updates = apply({"params": params, **updates}, batch["view2"])
  target = state["method_state"]["target"]
  z1, stats = common.target_projections(run, target, batch["view1"])
  z2, stats = common.target_projections(run, {**target, "batch_stats": stats}, batch["view2"])
  # Elementwise in the batch: under jit the mean is already global.
  loss = losses.byol_regression(p1, z2) + losses.byol_regression(p2, z1)
  changes = {"batch_stats": updates["batch_stats"],
             "method_state": {"target": {**target, "batch_stats": stats}}}
  metrics = {"embedding_std": losses.embedding_std(z1),
             "momentum": tau(run.config, state["step"], run.total_steps)}
  return loss, (changes, metrics, features)
