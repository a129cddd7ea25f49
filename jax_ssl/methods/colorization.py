"""Colorization (Zhang, Isola & Efros 2016): predict an image's colours from its lightness.

The view's CIE Lab L channel goes into the encoder (its first conv takes one channel); a
decoder on the backbone's last map predicts, at 1/`output_stride` of the view's side (the
paper's 56 of 224), a distribution over quantised ab colours for every pixel. The bins are
the paper's 10-wide grid kept where sRGB colours fall (`ab_bins`). The target of a pixel
is its ab value (averaged down to the output grid) soft-encoded over its 5 nearest bins
with a Gaussian of sigma 5; the loss is the cross-entropy to it, each pixel weighted by
the class-rebalancing weight of its nearest bin (`rebalancing_weights`). With
`loss='regression'` the decoder predicts ab itself under an L2 loss (the paper's
baseline, which it finds gives greyish colours).

The rebalancing prior is an exponential moving average, in the method state, of every
batch's soft-encoded targets (it starts uniform: weights of 1), rather than a separate
pass over ImageNet before training as the paper computes it.

For evaluation the encoder takes RGB images and converts them to L itself, so probes and
exports see an ordinary images-to-features encoder.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jax_ssl import config as config_lib, losses, methods, models, pretext
from jax_ssl.data import transforms, views
from jax_ssl.methods import common

GROUP = "colour"
LOSSES = ("classification", "regression")
BIN_WIDTH = 10.0   # the paper's grid of ab bins
AB_SCALE = 110.0   # transforms.lab gives ab / 110
GAMUT_SAMPLES = 512  # points along each edge of the sRGB cube's faces sampled for the gamut


def config():
  return ml_collections.ConfigDict(dict(
      loss="classification",      # or 'regression': L2 on ab
      decoder_widths=(256, 128, 64),  # transposed convs on the backbone's map
      output_stride=4,            # predictions at 1/4 of the view's side (56 of 224)
      neighbours=5,               # soft-encoding: the nearest bins of each target
      sigma=5.0,                  # soft-encoding: their Gaussian weights' width, ab units
      rebalance_lambda=0.5,       # the prior mixed with uniform; 1.0: no rebalancing
      prior_sigma=5.0,            # the Gaussian smoothing of the empirical prior
      prior_momentum=0.99,        # its moving average over batches
  ))


def colour_views():
  # No colour jitter or greying: the colours are the target.
  return views.groups(**{GROUP: views.group(transform="lab", color_prob=0.0,
                                            grayscale_prob=0.0)})


def tiny(c):
  c.colorization.decoder_widths = (32,)


# ------------------------------------------------------------- ab bins ----
@functools.lru_cache(maxsize=None)
def ab_bins():
  """The in-gamut bin centres [Q, 2] (a, b in Lab units), in row-major order of (a, b).

  A centre (a multiple of BIN_WIDTH in a and b) is in gamut when some sRGB colour has it as
  its nearest centre. The ab colours of the sRGB cube are those of its surface (each
  vertical line of the colour solid meets its boundary), so a dense grid on the cube's six
  faces finds them: 262 bins, against the paper's 313, whose gamut came from ImageNet's
  colours on its own grid. Deterministic: every process computes the same set.
  """
  edge = np.linspace(0.0, 1.0, GAMUT_SAMPLES, dtype=np.float32)
  u, v = (x.ravel() for x in np.meshgrid(edge, edge, indexing="ij"))
  faces = [np.insert(np.stack([u, v], -1), axis, value, axis=1)
           for axis in range(3) for value in (0.0, 1.0)]
  ab = transforms.rgb_to_lab(np.concatenate(faces), xp=np)[:, 1:]  # NumPy: a constant
  a, b = np.round(ab / BIN_WIDTH).astype(np.int64).T
  span = 2 * round(AB_SCALE / BIN_WIDTH) + 1  # cells per axis; one integer a cell: fast
  codes = np.unique((a + span // 2) * span + b + span // 2)
  cells = np.stack(np.divmod(codes, span), -1) - span // 2
  return (cells * BIN_WIDTH).astype(np.float32)


def _squared_distances(ab, centres):
  return (jnp.sum(ab ** 2, -1, keepdims=True) - 2 * ab @ centres.T
          + jnp.sum(centres ** 2, -1))


def soft_encode(ab, neighbours=5, sigma=5.0):
  """ab [..., 2] (Lab units) -> ([..., Q] weights on the `neighbours` nearest bins, Gaussian
  in the distance and summing to 1; [...] the nearest bin)."""
  centres = jnp.asarray(ab_bins())
  distances = jnp.maximum(_squared_distances(ab.astype(jnp.float32), centres), 0.0)
  negative, nearest = jax.lax.top_k(-distances, neighbours)
  weights = jax.nn.softmax(negative / (2 * sigma ** 2), axis=-1)  # exp(-d^2 / 2 s^2), summed 1
  encoded = jnp.sum(jax.nn.one_hot(nearest, len(centres)) * weights[..., None], axis=-2)
  return encoded, nearest[..., 0]


def smoothed(prior, sigma):
  """The prior over bins [Q] smoothed by a Gaussian of `sigma` in ab, keeping its mass."""
  centres = ab_bins()
  distances = ((centres[:, None] - centres[None]) ** 2).sum(-1)
  kernel = np.exp(-distances / (2 * sigma ** 2))
  return jnp.asarray(kernel / kernel.sum(0)) @ prior  # column j spreads bin j's mass


def rebalancing_weights(prior, mix, sigma):
  """The paper's w proportional to ((1 - lambda) p~ + lambda / Q)^-1, scaled so that
  sum_q p~_q w_q = 1, p~ the prior smoothed by a Gaussian of `sigma`."""
  prior_smooth = smoothed(prior, sigma)
  weights = 1.0 / ((1 - mix) * prior_smooth + mix / prior.shape[0])
  return weights / jnp.sum(prior_smooth * weights)


# ---------------------------------------------------------------- model ----
def output_size(c):
  view = next(g for g in views.view_groups(c.data) if g.name == GROUP)
  return max(1, view.size // c.colorization.output_stride)


def create_model(c):
  s = c.colorization
  outputs = len(ab_bins()) if s.loss == "classification" else 2
  return pretext.create_encoder_decoder(c, s.decoder_widths, outputs, output_size(c))


class LightnessEncoder(nn.Module):
  """RGB images in [0, 1] -> the backbone's features of their L channel, as trained."""
  backbone: nn.Module

  def __call__(self, x, train: bool):
    return self.backbone(transforms.lab(x, None)["image"], train=train)


def encoder(c):
  return methods.Encoder(
      module=LightnessEncoder(models.create_backbone(c.model)),
      variables=lambda params, stats: {"params": {"backbone": params["backbone"]},
                                       "batch_stats": {"backbone": stats.get("backbone", {})}})


def init_state(run, variables, batch):
  del variables, batch
  bins = len(ab_bins())
  return {"prior": jnp.full((bins,), 1.0 / bins)}


# ----------------------------------------------------------------- loss ----
def _targets(ab, size):
  """The view's ab [B, S, S, 2] (scaled by 1/110) averaged down to [B, size, size, 2], in
  Lab units."""
  shape = (ab.shape[0], size, size, 2)
  return jax.image.resize(ab.astype(jnp.float32), shape, "linear") * AB_SCALE


def classification_loss(logits, ab, prior, s):
  """(loss, metrics, new prior) of per-pixel logits [..., Q] against ab [..., 2]."""
  encoded, nearest = soft_encode(ab, s.neighbours, s.sigma)
  weights = rebalancing_weights(prior, s.rebalance_lambda, s.prior_sigma)[nearest]
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
  value = jnp.mean(weights * -jnp.sum(encoded * log_probs, axis=-1))
  batch_prior = jnp.mean(encoded.reshape(-1, encoded.shape[-1]), axis=0)
  new_prior = s.prior_momentum * prior + (1 - s.prior_momentum) * batch_prior
  metrics = {"pretext_accuracy": jnp.mean(jnp.argmax(logits, -1) == nearest),
             "mean_weight": jnp.mean(weights)}
  return value, metrics, new_prior


def regression_loss(predicted, ab):
  """Squared error of predicted ab (in units of 110, as the view's) summed over a and b,
  averaged over pixels."""
  return jnp.mean(jnp.sum((predicted.astype(jnp.float32) - ab / AB_SCALE) ** 2, axis=-1))


def loss(params, state, batch, rng, run):
  s = run.config.colorization
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, outputs = forward(batch[GROUP])
  ab = _targets(batch[f"{GROUP}_ab"], outputs.shape[1])
  prior = state["method_state"]["prior"]
  if s.loss == "classification":
    value, metrics, prior = classification_loss(outputs, ab, prior, s)
  else:
    value, metrics = regression_loss(outputs, ab), {}
  metrics["embedding_std"] = losses.embedding_std(features)
  return methods.LossResult(value, metrics, forward.batch_stats,
                            {"prior": jax.lax.stop_gradient(prior)}, features)


def check(c, num_devices):
  del num_devices
  s = c.colorization
  checks = [
      ("loss", s.loss, s.loss in LOSSES, f"one of {LOSSES}"),
      ("output_stride", s.output_stride, isinstance(s.output_stride, int)
       and s.output_stride >= 1, "an integer >= 1"),
      ("neighbours", s.neighbours, isinstance(s.neighbours, int)
       and 1 <= s.neighbours <= len(ab_bins()), f"an integer in [1, {len(ab_bins())}]"),
      ("sigma", s.sigma, s.sigma > 0, "> 0"),
      ("prior_sigma", s.prior_sigma, s.prior_sigma > 0, "> 0"),
      # 0 would weigh colours the smoothed prior gives no mass at all by 1 / 0
      ("rebalance_lambda", s.rebalance_lambda, 0 < s.rebalance_lambda <= 1, "in (0, 1]"),
      ("prior_momentum", s.prior_momentum, 0 <= s.prior_momentum < 1, "in [0, 1)"),
  ]
  for field, value, ok, expected in checks:
    config_lib.require(ok, f"config.colorization.{field}", value, expected)
  pretext.check_widths(c, "colorization")
  pretext.check_view(c, GROUP, "lab")


METHOD = methods.register(methods.Method(
    name="colorization", config=config, views=colour_views, create_model=create_model,
    loss=loss, tiny=tiny, check=check, init_model=pretext.group_initialiser(GROUP),
    init_state=init_state, encoder=encoder))
