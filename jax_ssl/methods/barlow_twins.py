"""Barlow Twins (Zbontar et al. 2021): the two views' embeddings made to correlate like the
identity.

Each view goes through the encoder and a 3-layer projector (8192 wide, BN and ReLU in the
hidden layers, a bias-free linear output); the loss standardises each embedding dimension
over the global batch and pushes the views' cross-correlation matrix, averaged over the
global batch, towards the identity: sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2
(losses.barlow_twins_loss). Each view has its own forward pass, as in the official code.

The official LARS gives weights and biases/BN parameters their own learning rates
(0.2 and 0.0048 x B/256): here the `biases` parameter group, at 0.0048 / 0.2 of the run's
rate (`config.optim.groups.biases.lr_multiplier`).
"""
import ml_collections

from jax_ssl import config as config_lib, losses, methods, models
from jax_ssl.methods import common

# Every 1-D parameter: Dense biases, BN scales and offsets.
VECTOR_PARAMS = r"/(bias|scale)$"


def config():
  return ml_collections.ConfigDict(dict(
      proj_hidden_dims=(8192, 8192),
      proj_dim=8192,
      lambd=0.0051,   # the off-diagonal weight lambda
  ))


def tiny(c):
  c.barlow_twins.update(proj_hidden_dims=(64, 64), proj_dim=64)


def check(c, num_devices):
  del num_devices
  config_lib.require(c.barlow_twins.lambd >= 0, "config.barlow_twins.lambd",
                     c.barlow_twins.lambd, ">= 0")


def create_model(c):
  b = c.barlow_twins
  projector = common.mlp_head(c, b.proj_hidden_dims, b.proj_dim, output_bias=False)
  return common.EncoderWithHeads(models.create_backbone(c.model), projector)


def loss(params, state, batch, rng, run):
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, z1 = forward(batch["view1"])
  _, z2 = forward(batch["view2"])
  value = common.global_loss(run, losses.barlow_twins_loss, z1, z2,
                             lambd=run.config.barlow_twins.lambd)
  return methods.LossResult(value, {"embedding_std": losses.embedding_std(z1)},
                            forward.batch_stats, features=features)


METHOD = methods.register(methods.Method(
    name="barlow_twins", config=config, views=common.byol_views, augment=common.BYOL_AUGMENT,
    create_model=create_model, loss=loss, tiny=tiny, check=check,
    param_groups={"biases": methods.group(VECTOR_PARAMS, lr_multiplier=0.0048 / 0.2)}))
