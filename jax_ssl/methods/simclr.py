"""SimCLR (Chen et al. 2020): two views, a projection head, NT-Xent across all devices."""
import functools

import jax
import ml_collections
from jax.sharding import PartitionSpec as P

from jax_ssl import config as config_lib, losses, methods, models, parallel
from jax_ssl.methods import common


def config():
  return ml_collections.ConfigDict(dict(
      temperature=0.1,
      proj_hidden_dims=(2048, 2048),  # SimCLR v2: 3 layers, hidden width = encoder width
      proj_dim=128,
      proj_last_bn=True,
      # 1: the paper's mean over the 2N anchors; 2: the official code's objective, the
      # sum of the two directions' means, whose gradients are twice as large.
      loss_scale=1.0,
  ))


def tiny(c):
  c.simclr.update(proj_hidden_dims=(64,), proj_dim=32)


def check(c, num_devices):
  del num_devices
  config_lib.require(c.simclr.temperature > 0, "config.simclr.temperature",
                     c.simclr.temperature, "> 0")
  config_lib.require(c.simclr.loss_scale > 0, "config.simclr.loss_scale",
                     c.simclr.loss_scale, "> 0")


def create_model(c):
  s = c.simclr
  projector = models.MLPHead(
      hidden_dims=tuple(s.proj_hidden_dims), output_dim=s.proj_dim, last_bn=s.proj_last_bn,
      dtype=models.DTYPES[c.model.dtype])
  return common.EncoderWithHeads(models.create_backbone(c.model), projector)


def loss(params, state, batch, rng, run):
  del rng
  # One forward pass over both views: BatchNorm normalises them together, as SimCLR does.
  forward = common.Forward(run, params, state["batch_stats"])
  features, z = forward(common.interleave_views(batch))
  z = z.reshape(-1, 2, z.shape[-1])
  loss_fn = functools.partial(
      losses.nt_xent, temperature=run.config.simclr.temperature, axis_name=parallel.DATA_AXIS)
  spec = P(parallel.DATA_AXIS)
  value = jax.shard_map(loss_fn, mesh=run.mesh, in_specs=(spec, spec), out_specs=P())(
      z[:, 0], z[:, 1]) * run.config.simclr.loss_scale
  return methods.LossResult(
      value, {"embedding_std": losses.embedding_std(z[:, 0])}, forward.batch_stats,
      features=features.reshape(-1, 2, features.shape[-1])[:, 0])


METHOD = methods.register(methods.Method(
    name="simclr", config=config, views=common.two_views, create_model=create_model,
    loss=loss, tiny=tiny, check=check))
