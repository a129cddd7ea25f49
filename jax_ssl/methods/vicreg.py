"""VICReg (Bardes, Ponce & LeCun 2022): variance, invariance and covariance regularisation.

Each view goes through the encoder and a 3-layer expander (8192 wide, BN and ReLU in the
hidden layers, a bias-free linear output). The loss weighs three terms of the two views'
embeddings over the global batch (losses.vicreg_loss): the mean squared distance between
the views (invariance, 25), a hinge keeping each dimension's standard deviation above 1
(variance, 25), and the squared off-diagonal covariances (covariance, 1). Each view has its
own forward pass, as in the official code; the three terms are logged.
"""
import ml_collections

from jax_ssl import config as config_lib, losses, methods, models
from jax_ssl.methods import common


def config():
  return ml_collections.ConfigDict(dict(
      proj_hidden_dims=(8192, 8192),
      proj_dim=8192,
      invariance=25.0,
      variance=25.0,
      covariance=1.0,
  ))


def tiny(c):
  c.vicreg.update(proj_hidden_dims=(64, 64), proj_dim=64)


def check(c, num_devices):
  del num_devices
  for term in ("invariance", "variance", "covariance"):
    config_lib.require(c.vicreg[term] >= 0, f"config.vicreg.{term}", c.vicreg[term], ">= 0")


def create_model(c):
  v = c.vicreg
  projector = common.mlp_head(c, v.proj_hidden_dims, v.proj_dim, output_bias=False)
  return common.EncoderWithHeads(models.create_backbone(c.model), projector)


def loss(params, state, batch, rng, run):
  v = run.config.vicreg
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, z1 = forward(batch["view1"])
  _, z2 = forward(batch["view2"])
  terms = common.global_loss(run, losses.vicreg_terms, z1, z2)
  value = (v.invariance * terms["invariance"] + v.variance * terms["variance"]
           + v.covariance * terms["covariance"])
  return methods.LossResult(value, {"embedding_std": losses.embedding_std(z1), **terms},
                            forward.batch_stats, features=features)


METHOD = methods.register(methods.Method(
    name="vicreg", config=config, views=common.byol_views, augment=common.BYOL_AUGMENT,
    create_model=create_model, loss=loss, tiny=tiny, check=check))
