"""Pieces the methods share: the encoder-with-heads model, view stacking, EMA targets.

Functions only; a method calls what it needs.
"""
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from jax_ssl import models, optim, parallel

# PyTorch's and Haiku's Linear layers start near lecun_normal; the BYOL, MoCo
# and SwAV heads use those defaults (SimCLR's N(0, 0.01) is its own choice).
HEAD_INIT = nn.initializers.lecun_normal()
TARGET_KEYS = ("backbone", "projector")


class EncoderWithHeads(nn.Module):
  """backbone -> projector [-> predictor]. `project` is the target network's path."""
  backbone: nn.Module
  projector: nn.Module
  predictor: Optional[nn.Module] = None

  def __call__(self, x, train: bool):
    features = self.backbone(x, train=train)
    z = self.projector(features, train=train)
    return features, z if self.predictor is None else self.predictor(z, train=train)

  def project(self, x, train: bool):
    return self.projector(self.backbone(x, train=train), train=train)


def mlp_head(config, hidden_dims, output_dim, use_bn=True, last_bn=False, last_bn_scale=True):
  return models.MLPHead(hidden_dims=tuple(hidden_dims), output_dim=output_dim, use_bn=use_bn,
                        last_bn=last_bn, last_bn_scale=last_bn_scale,
                        dtype=models.DTYPES[config.model.dtype], kernel_init=HEAD_INIT)


def interleave_views(batch):
  """[B, ...] view1 and view2 -> [2B, ...] with each example's views adjacent.

  Merging the stacked axis into the sharded batch axis moves no data between
  devices.
  """
  views = jnp.stack([batch["view1"], batch["view2"]], axis=1)
  return views.reshape((-1,) + views.shape[2:])


def init_target(variables):
  """The target network starts as a copy of the online encoder and projector."""
  return {
      "params": {k: variables["params"][k] for k in TARGET_KEYS},
      "batch_stats": {k: variables.get("batch_stats", {}).get(k, {}) for k in TARGET_KEYS},
  }


def target_projections(run, target, images, rng=None):
  """The target's projections of `images`, in training mode, as constants.

  With `rng` the batch is shuffled across devices first and BatchNorm uses
  each device's own statistics (MoCo's shuffle-BN), then unshuffled.
  Returns (projections, the target's new BN statistics).
  """
  target = jax.lax.stop_gradient(target)

  def forward(variables, x):
    return run.model.apply(variables, x, train=True, mutable=["batch_stats"],
                           method=EncoderWithHeads.project)

  if rng is None:
    z, updates = forward(target, images)
    return jax.lax.stop_gradient(z), updates["batch_stats"]

  def per_device(variables, x):  # no axis_name in the BN layers: local statistics
    z, updates = forward(variables, x)
    return z, jax.lax.pmean(updates["batch_stats"], parallel.DATA_AXIS)

  order = jax.random.permutation(rng, images.shape[0])
  z, batch_stats = jax.shard_map(
      per_device, mesh=run.mesh, in_specs=(P(), P(parallel.DATA_AXIS)),
      out_specs=(P(parallel.DATA_AXIS), P()))(target, images[order])
  return jax.lax.stop_gradient(z[jnp.argsort(order)]), batch_stats


def ema_target(state, momentum):
  """Moves the target's parameters towards the online ones; BN statistics are the target's own."""
  method_state = state["method_state"]
  online = {k: state["params"][k] for k in TARGET_KEYS}
  params = optim.ema_update(method_state["target"]["params"], online, momentum)
  target = {**method_state["target"], "params": params}
  return {**state, "method_state": {**method_state, "target": target}}
