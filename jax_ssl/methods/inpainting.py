"""Inpainting, the context encoder (Pathak et al. 2016): fill in a missing region.

A square of the view, a quarter of its area by default (the paper's central 64 x 64
pixels of 128), is filled with grey: at the centre (`region='center'`, the view transform
'center_mask') or anywhere (`region='random'`, 'mask'). The encoder sees the masked view;
a decoder of transposed convs on its last map reconstructs the whole view, and the loss is
the squared error on the masked region only (`masked_l2`), so nothing outside it is
learnt. The encoder alone is the evaluation encoder and what export writes.

Not implemented: the paper's adversarial term (a discriminator on the filled-in region,
weight 0.001) and its overlapping border (the region's outer 4 pixels given to the
encoder and weighted 10 times in the loss); the reconstruction loss alone is the paper's
'L2' variant.
"""
import jax.numpy as jnp
import ml_collections

from jax_ssl import config as config_lib, losses, methods, pretext
from jax_ssl.data import views
from jax_ssl.methods import common

GROUP = "masked"
REGIONS = {"center": "center_mask", "random": "mask"}  # region -> its view transform


def config():
  return ml_collections.ConfigDict(dict(
      region="center",            # 'center' or 'random'; the view transform must match
      decoder_widths=(512, 256, 128, 64, 32),  # transposed convs, each doubling the map
  ))


def masked_views(region="center", area=0.25):
  return views.groups(**{GROUP: views.group(transform=f"{REGIONS[region]}:{area}")})


def tiny(c):
  c.inpainting.decoder_widths = (32, 16, 8)


def create_model(c):
  view = next(g for g in views.view_groups(c.data) if g.name == GROUP)
  return pretext.create_encoder_decoder(c, c.inpainting.decoder_widths, 3, view.size)


def masked_l2(predicted, target, mask):
  """Mean squared error over the masked pixels and the channels: sum(mask * (p - t)^2) /
  (sum(mask) * channels). Predictions outside the mask count for nothing."""
  squared = (predicted.astype(jnp.float32) - target.astype(jnp.float32)) ** 2
  masked = jnp.sum(mask * squared)
  return masked / jnp.maximum(jnp.sum(mask) * predicted.shape[-1], 1.0)


def loss(params, state, batch, rng, run):
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, reconstruction = forward(batch[GROUP])
  value = masked_l2(reconstruction, batch[f"{GROUP}_target"], batch[f"{GROUP}_mask"])
  return methods.LossResult(value, {"embedding_std": losses.embedding_std(features)},
                            forward.batch_stats, features=features)


def check(c, num_devices):
  del num_devices
  region = c.inpainting.region
  config_lib.require(region in REGIONS, "config.inpainting.region", region,
                     f"one of {tuple(REGIONS)}")
  pretext.check_widths(c, "inpainting")
  view = c.data.views.get(GROUP)
  config_lib.require(view is not None and view.count == 1, f"config.data.views.{GROUP}",
                     view and view.to_dict(), "one view (count=1)")
  name, _, area = view.transform.partition(":")
  expected = f"'{REGIONS[region]}:<area in (0, 1)>' for config.inpainting.region={region!r}"
  config_lib.require(name == REGIONS[region] and _is_fraction(area),
                     f"config.data.views.{GROUP}.transform", view.transform, expected)


def _is_fraction(text):
  """'' (the transform's default area) or a number in (0, 1)."""
  try:
    return not text or 0 < float(text) < 1
  except ValueError:
    return False


METHOD = methods.register(methods.Method(
    name="inpainting", config=config, views=masked_views, create_model=create_model,
    loss=loss, tiny=tiny, check=check, init_model=pretext.group_initialiser(GROUP)))
