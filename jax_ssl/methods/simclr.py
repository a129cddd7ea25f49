"""SimCLR (Chen et al. 2020): two views, a projection head, NT-Xent across all devices."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from jax_ssl import losses, methods, models, parallel


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


def two_view_input(batch):
  """Interleaves the views as [2B, H, W, C] so each device keeps its own examples.

  Stacking on axis 1 then merging it into the sharded batch axis moves no data
  between devices, and one forward pass normalises both views with the same
  (global) BatchNorm statistics, as SimCLR does.
  """
  views = jnp.stack([batch["view1"], batch["view2"]], axis=1)
  return views.reshape((-1,) + views.shape[2:])


def compute_loss(params, state, batch, rng, run):
  del rng
  (features, z), updates = run.model.apply(
      {"params": params, "batch_stats": state["batch_stats"]}, two_view_input(batch),
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
