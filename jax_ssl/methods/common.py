"""Pieces the methods share: views, the encoder-with-heads model, a forward pass that
threads BN statistics, EMA targets.

A method calls what it needs; nothing here is inherited.
"""
import functools
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from jax_ssl import methods, models, optim, parallel
from jax_ssl.data import views

# PyTorch's and Haiku's Linear layers start near lecun_normal; the BYOL, MoCo
# and SwAV heads use those defaults (SimCLR's N(0, 0.01) is its own choice).
HEAD_INIT = nn.initializers.lecun_normal()
TARGET_KEYS = ("backbone", "projector")
DROPOUT_STREAM = 0x5D  # Forward's stream of the loss's rng: apart from the method's own draws


class Forward:
  """The model in training mode, call after call, each call starting from the BN statistics
  the previous one left; `batch_stats` is then what the step returns as the model's state.

    forward = common.Forward(run, params, state["batch_stats"], rng)
    features_1, z_1 = forward(batch["view1"])
    features_2, z_2 = forward(batch["view2"])
    return LossResult(loss, batch_stats=forward.batch_stats, ...)

  With the loss's `rng`, each call gets its own 'dropout' key, drawn from a stream of its
  own, for a ViT's stochastic depth (config.model.drop_path_rate); the EMA targets'
  forward passes none, so a teacher drops no path (DINO's official teacher has none).
  """

  def __init__(self, run, params, batch_stats, rng=None):
    self._apply = functools.partial(run.model.apply, train=True, mutable=["batch_stats"])
    self.params = params
    self.batch_stats = batch_stats
    self._rng = None if rng is None else jax.random.fold_in(rng, DROPOUT_STREAM)
    self._calls = 0

  def __call__(self, *inputs, method=None):
    rngs = {}
    if self._rng is not None:
      rngs["dropout"] = jax.random.fold_in(self._rng, self._calls)
      self._calls += 1
    out, updates = self._apply({"params": self.params, "batch_stats": self.batch_stats},
                               *inputs, method=method, rngs=rngs)
    self.batch_stats = updates["batch_stats"]
    return out


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

  def outputs(self, x, train: bool):
    """(features, projection, prediction): SimSiam needs the projection beside the
    prediction."""
    features = self.backbone(x, train=train)
    z = self.projector(features, train=train)
    return features, z, self.predictor(z, train=train)


def mlp_head(config, hidden_dims, output_dim, use_bn=True, last_bn=False, last_bn_scale=True,
             output_bias=None):
  return models.MLPHead(hidden_dims=tuple(hidden_dims), output_dim=output_dim, use_bn=use_bn,
                        last_bn=last_bn, last_bn_scale=last_bn_scale, output_bias=output_bias,
                        dtype=models.DTYPES[config.model.dtype], kernel_init=HEAD_INIT)


# ------------------------------------------------------------------ views ----
def two_views(**each):
  """config.data.views for two views of each image, 'view1' and 'view2', with the shared
  augmentation (SimCLR, MoCo, SimSiam, Barlow Twins, VICReg); `each` sets fields of both."""
  return views.groups(view1=views.group(**each), view2=views.group(**each))


# BYOL's augmentations (Grill et al. 2020, Table 6), also MoCo v3's: colour jitter
# 0.4/0.4/0.2/0.1 with p = 0.8 and grayscale 0.2 for both views; blur p = 1.0 / 0.1 and
# solarize p = 0 / 0.2 for the first / second.
BYOL_AUGMENT = {"color_strength": 1.0, "jitter": (0.4, 0.4, 0.2, 0.1), "color_prob": 0.8,
                "grayscale_prob": 0.2}


# A ViT's patch projection as a parameter group, so that a run with MoCo v3's frozen random
# projection (config.model.frozen_patch_embed) can keep it out of weight decay: a method that
# may freeze it declares this group (config.validate checks it).
PATCH_EMBED_GROUP = {"patch_embed": methods.group(r"^backbone/patch_embed/")}


def byol_views():
  return views.groups(view1=views.group(blur_prob=1.0, solarize_prob=0.0),
                      view2=views.group(blur_prob=0.1, solarize_prob=0.2))


def stacked(batch, name):
  """A view group as [B, n, S, S, 3], whether it holds one view per example or several."""
  images = batch[name]
  return images[:, None] if images.ndim == 4 else images


def interleave_views(batch):
  """[B, ...] view1 and view2 -> [2B, ...] with each example's views adjacent.

  Merging the stacked axis into the sharded batch axis moves no data between
  devices.
  """
  views = jnp.stack([batch["view1"], batch["view2"]], axis=1)
  return views.reshape((-1,) + views.shape[2:])


def global_loss(run, loss_fn, *arrays, replicated=(), **kwargs):
  """`loss_fn(*arrays, *replicated, axis_name='data', **kwargs)` in a shard_map over the
  batch axis: a per-device loss (losses.py) computed for the global batch, replicated.
  `arrays` are split by rows over the devices, `replicated` (a memory bank's negatives)
  are whole on each."""
  fn = functools.partial(loss_fn, axis_name=parallel.DATA_AXIS, **kwargs)
  specs = (P(parallel.DATA_AXIS),) * len(arrays) + (P(),) * len(replicated)
  return jax.shard_map(fn, mesh=run.mesh, in_specs=specs, out_specs=P())(*arrays, *replicated)


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


def ema_target(params, method_state, momentum):
  """The method state with its target moved towards the online parameters; BN statistics
  are the target's own."""
  online = {k: params[k] for k in TARGET_KEYS}
  target_params = optim.ema_update(method_state["target"]["params"], online, momentum)
  return {**method_state, "target": {**method_state["target"], "params": target_params}}
