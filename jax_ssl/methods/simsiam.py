"""SimSiam (Chen & He 2021): a predictor and a stop-gradient, no negatives, no target network.

Each view goes through the encoder, a 3-layer projector (BN on every layer, an affine-free
BN on its output) and a 2-layer bottleneck predictor; the loss is the symmetric negative
cosine between one view's prediction and the other view's projection, whose gradient is
stopped (losses.simsiam_loss). As the official code does, each view has its own forward
pass (BN statistics per view, over the global batch), and the predictor keeps the initial
learning rate while the rest follows the cosine (`config.optim.groups.predictor`).
"""
import ml_collections

from jax_ssl import config as config_lib, losses, methods, models
from jax_ssl.methods import common


def config():
  return ml_collections.ConfigDict(dict(
      proj_hidden_dims=(2048, 2048),  # the projector's hidden layers (ResNet-50: its width)
      proj_dim=2048,
      pred_hidden_dim=512,            # the predictor's bottleneck
  ))


def tiny(c):
  c.simsiam.update(proj_hidden_dims=(64, 64), proj_dim=64, pred_hidden_dim=16)


def check(c, num_devices):
  del num_devices
  s = c.simsiam
  config_lib.require(s.pred_hidden_dim > 0, "config.simsiam.pred_hidden_dim",
                     s.pred_hidden_dim, "> 0")


def create_model(c):
  s = c.simsiam
  projector = common.mlp_head(c, s.proj_hidden_dims, s.proj_dim, last_bn=True,
                              last_bn_scale=False)
  predictor = common.mlp_head(c, (s.pred_hidden_dim,), s.proj_dim)
  return common.EncoderWithHeads(models.create_backbone(c.model), projector, predictor)


def loss(params, state, batch, rng, run):
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, z1, p1 = forward(batch["view1"], method=common.EncoderWithHeads.outputs)
  _, z2, p2 = forward(batch["view2"], method=common.EncoderWithHeads.outputs)
  value = common.global_loss(run, losses.simsiam_loss, p1, p2, z1, z2)
  return methods.LossResult(value, {"embedding_std": losses.embedding_std(z1)},
                            forward.batch_stats, features=features)


METHOD = methods.register(methods.Method(
    name="simsiam", config=config, views=common.two_views, create_model=create_model, loss=loss,
    tiny=tiny, check=check,
    param_groups={"predictor": methods.group(r"^predictor/", constant_lr=True)}))
