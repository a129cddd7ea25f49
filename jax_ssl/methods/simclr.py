"""SimCLR (Chen et al. 2020): two views, a projection head, NT-Xent across all devices."""
import functools

import flax.linen as nn
import jax
from jax.sharding import PartitionSpec as P

from jax_ssl import losses, methods, models, parallel
from jax_ssl.methods import common


class SimCLRModel(nn.Module):
  backbone: nn.Module
  projector: nn.Module

  def __call__(self, x, train: bool):
    features = self.backbone(x, train=train)
    return features, self.projector(features, train=train)


def create_model(config):
  s = config.simclr
  projector = models.MLPHead(
      hidden_dims=tuple(s.proj_hidden_dims), output_dim=s.proj_dim, last_bn=s.proj_last_bn,
      dtype=models.DTYPES[config.model.dtype])
  return SimCLRModel(backbone=models.create_backbone(config.model), projector=projector)


def init_method_state(config, variables):
  del config, variables
  return {}


after_update = methods.keep_state
adapt_optimizer = methods.same_optimizer


def check_config(config, num_devices):
  del num_devices
  if config.simclr.temperature <= 0:
    raise ValueError(f"config.simclr.temperature={config.simclr.temperature!r} is invalid: "
                     "expected > 0")


def compute_loss(params, state, batch, rng, run):
  del rng
  # One forward pass over both views: BatchNorm normalises them together, as SimCLR does.
  (features, z), updates = run.model.apply(
      {"params": params, "batch_stats": state["batch_stats"]}, common.interleave_views(batch),
      train=True, mutable=["batch_stats"])
  z = z.reshape(-1, 2, z.shape[-1])
  features = features.reshape(-1, 2, features.shape[-1])[:, 0]
  loss_fn = functools.partial(
      losses.nt_xent, temperature=run.config.simclr.temperature, axis_name=parallel.DATA_AXIS)
  spec = P(parallel.DATA_AXIS)
  loss = jax.shard_map(loss_fn, mesh=run.mesh, in_specs=(spec, spec), out_specs=P())(
      z[:, 0], z[:, 1])
  metrics = {"loss": loss, "embedding_std": losses.embedding_std(z[:, 0])}
  return loss, ({"batch_stats": updates["batch_stats"]}, metrics, features)
