"""BYOL (Grill et al. 2020): an online network predicts an EMA target's projection.

Online: encoder -> projector -> predictor. Target: an EMA of encoder and
projector whose rate rises from tau_base to 1 on a cosine schedule. The loss
is 2 - 2 cos(prediction, target projection), summed over both directions.
Each view gets its own forward pass, so BatchNorm sees one view at a time.
"""
import ml_collections

from jax_ssl import config as config_lib, losses, methods, models, optim
from jax_ssl.methods import common


def config():
  return ml_collections.ConfigDict(dict(
      tau_base=0.996,            # target EMA rate at step 0, rising to 1 on a cosine
      proj_hidden_dims=(4096,),
      proj_dim=256,
      pred_hidden_dims=(4096,),
  ))


def tiny(c):
  c.byol.update(proj_hidden_dims=(64,), pred_hidden_dims=(64,), proj_dim=32)


def check(c, num_devices):
  del num_devices
  config_lib.require(0 <= c.byol.tau_base <= 1, "config.byol.tau_base", c.byol.tau_base,
                     "in [0, 1]")


def create_model(c):
  b = c.byol
  # BYOL's MLPs end in a bias-free linear layer.
  projector = common.mlp_head(c, b.proj_hidden_dims, b.proj_dim, output_bias=False)
  predictor = common.mlp_head(c, b.pred_hidden_dims, b.proj_dim, output_bias=False)
  return common.EncoderWithHeads(models.create_backbone(c.model), projector, predictor)


def init_state(run, variables, batch):
  del run, batch
  return {"target": common.init_target(variables)}


def tau(config, step, total_steps):
  return optim.ema_momentum(step, total_steps, config.byol.tau_base, "cosine")


def after_update(params, method_state, step, run):
  # BYOL updates the target after the online step k with tau(k).
  return params, common.ema_target(params, method_state, tau(run.config, step, run.total_steps))


def loss(params, state, batch, rng, run):
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, p1 = forward(batch["view1"])
  _, p2 = forward(batch["view2"])
  target = state["method_state"]["target"]
  z1, stats = common.target_projections(run, target, batch["view1"])
  z2, stats = common.target_projections(run, {**target, "batch_stats": stats}, batch["view2"])
  # Elementwise in the batch: under jit the mean is already global.
  value = losses.byol_regression(p1, z2) + losses.byol_regression(p2, z1)
  metrics = {"embedding_std": losses.embedding_std(z1),
             "momentum": tau(run.config, state["step"], run.total_steps)}
  return methods.LossResult(value, metrics, forward.batch_stats,
                            {"target": {**target, "batch_stats": stats}}, features)


METHOD = methods.register(methods.Method(
    name="byol", config=config, views=common.byol_views, augment=common.BYOL_AUGMENT,
    create_model=create_model, loss=loss, tiny=tiny, check=check, init_state=init_state,
    after_update=after_update))
