"""SimCLR (Chen et al. 2020): two views, a projection head, NT-Xent across all devices.

`config.simclr.loss` swaps NT-Xent for one of the contrastive losses it is compared with
(losses.py has each paper's formula); every one takes its negatives from the global
batch. `python -m jax_ssl.compare --config=configs/simclr_tiny.py --sweep=simclr.loss`
runs them all on the same data, seeds and budget.
"""
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
      loss="nt_xent",  # one of LOSSES
      tau_plus=0.1,  # debiased: the class prior (Chuang et al. 2020, their CIFAR-10 runs)
      hardness_beta=1.0,  # debiased_hard: the concentration beta (Robinson et al. 2021)
      margin=0.5,  # margin_triplet: m on cosine similarities (SimCLR did not publish its)
      weight_sigma=0.5,  # decoupled_weighted: the vMF weighting's sigma (Yeh et al. 2022)
      alignment_alpha=2.0,  # alignment_uniformity (Wang & Isola 2020): alpha, t, lambda
      uniformity_t=2.0,
      uniformity_weight=1.0,
  ))


def _loss_fn(s):
  """`config.simclr.loss` as a function of (z_a, z_b, axis_name) -> the global loss."""
  p = functools.partial
  return {
      "nt_xent": p(losses.nt_xent, temperature=s.temperature),
      "debiased": p(losses.debiased_nt_xent, temperature=s.temperature, tau_plus=s.tau_plus),
      "debiased_hard": p(losses.debiased_nt_xent, temperature=s.temperature,
                         tau_plus=s.tau_plus, beta=s.hardness_beta),
      "nt_logistic": p(losses.nt_logistic, temperature=s.temperature),
      "nt_logistic_semi_hard": p(losses.nt_logistic, temperature=s.temperature,
                                 semi_hard=True),
      "margin_triplet": p(losses.margin_triplet, margin=s.margin),
      "margin_triplet_semi_hard": p(losses.margin_triplet, margin=s.margin, semi_hard=True),
      "decoupled": p(losses.decoupled_nt_xent, temperature=s.temperature),
      "decoupled_weighted": p(losses.decoupled_nt_xent, temperature=s.temperature,
                              weight_sigma=s.weight_sigma),
      "alignment_uniformity": p(losses.alignment_uniformity, alpha=s.alignment_alpha,
                                t=s.uniformity_t, uniformity_weight=s.uniformity_weight),
  }[s.loss]


# SimCLR's Table 4 (NT-Xent, NT-Logistic and margin triplet, each with semi-hard mining)
# and the later remedies for its negatives.
LOSSES = ("nt_xent", "debiased", "debiased_hard", "nt_logistic", "nt_logistic_semi_hard",
          "margin_triplet", "margin_triplet_semi_hard", "decoupled", "decoupled_weighted",
          "alignment_uniformity")


def tiny(c):
  c.simclr.update(proj_hidden_dims=(64,), proj_dim=32)


def check(c, num_devices):
  del num_devices
  config_lib.require(c.simclr.temperature > 0, "config.simclr.temperature",
                     c.simclr.temperature, "> 0")
  config_lib.require(c.simclr.loss_scale > 0, "config.simclr.loss_scale",
                     c.simclr.loss_scale, "> 0")
  config_lib.require(0 <= c.simclr.tau_plus < 1, "config.simclr.tau_plus",
                     c.simclr.tau_plus, "in [0, 1)")
  for field in ("hardness_beta", "margin"):
    config_lib.require(c.simclr[field] >= 0, f"config.simclr.{field}", c.simclr[field], ">= 0")
  for field in ("weight_sigma", "alignment_alpha", "uniformity_t"):
    config_lib.require(c.simclr[field] > 0, f"config.simclr.{field}", c.simclr[field], "> 0")


def create_model(c):
  s = c.simclr
  projector = models.MLPHead(
      hidden_dims=tuple(s.proj_hidden_dims), output_dim=s.proj_dim, last_bn=s.proj_last_bn,
      dtype=models.DTYPES[c.model.dtype])
  return common.EncoderWithHeads(models.create_backbone(c.model), projector)


def loss(params, state, batch, rng, run):
  # One forward pass over both views: BatchNorm normalises them together, as SimCLR does.
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, z = forward(common.interleave_views(batch))
  z = z.reshape(-1, 2, z.shape[-1])
  loss_fn = functools.partial(_loss_fn(run.config.simclr), axis_name=parallel.DATA_AXIS)
  spec = P(parallel.DATA_AXIS)
  value = jax.shard_map(loss_fn, mesh=run.mesh, in_specs=(spec, spec), out_specs=P())(
      z[:, 0], z[:, 1]) * run.config.simclr.loss_scale
  return methods.LossResult(
      value, {"embedding_std": losses.embedding_std(z[:, 0])}, forward.batch_stats,
      features=features.reshape(-1, 2, features.shape[-1])[:, 0])


METHOD = methods.register(methods.Method(
    name="simclr", config=config, views=common.two_views, create_model=create_model,
    loss=loss, tiny=tiny, check=check, choices={"loss": LOSSES}))
