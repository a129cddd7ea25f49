"""MAE, masked autoencoders (He et al. 2022): reconstruct the pixels of hidden patches.

Each example hides `mask_ratio` (75%) of its patches, chosen by its own key: the patches
are ordered by uniform noise and the first quarter kept. The ViT encoder runs on the
visible patches and the class token alone; a light decoder (a linear embedding to 512,
a shared learned mask token in each hidden position, a fixed 2-D sin-cos position table,
8 blocks of width 512 with 16 heads, a linear layer to patch_size^2 x 3) predicts every
patch's pixels. The loss (losses.mae_loss) is the squared error on the hidden patches
only, against each patch standardised by its own mean and variance (`norm_pix_loss`).
The evaluation encoder is the plain ViT on the whole image (config.model.features: the
class token, MAE's linear probe; mean_patch for its global pool), which export writes.

Differences from the official code (facebookresearch/mae, models_mae.py): the images
enter in [0, 1] rather than standardised by ImageNet's mean and std (the targets are
standardised per patch either way); both sin-cos tables put the row's half of the width
first where MAE's put the column's (vit.sincos_table, a permutation of the width).
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jax_ssl import config as config_lib, losses, methods, models
from jax_ssl.data import views
from jax_ssl.methods import common
from jax_ssl.models import vit

GROUP = "image"


def config():
  return ml_collections.ConfigDict(dict(
      mask_ratio=0.75,     # hidden patches per example
      norm_pix_loss=True,  # targets: each patch standardised by its own mean and variance
      decoder_width=512,
      decoder_depth=8,
      decoder_heads=16,
  ))


def mae_views():
  """MAE's pretraining input: one crop from 20% to all of the area, flipped; no colour."""
  return views.groups(**{GROUP: views.group(crop_area_min=0.2, crop_area_max=1.0,
                                            color_prob=0.0, grayscale_prob=0.0,
                                            blur_prob=0.0, solarize_prob=0.0)})


def tiny(c):
  c.mae.update(decoder_width=64, decoder_depth=1, decoder_heads=4)


# ------------------------------------------------------------------ model ----
class Decoder(nn.Module):
  """Encoded tokens [B, 1 + K, D] of the kept patches `keep` [B, K] -> each of the
  `grid`^2 patches' predicted pixels [B, grid^2, pixels]."""

  width: int
  depth: int
  num_heads: int
  grid: int
  pixels: int
  dtype: Any

  @nn.compact
  def __call__(self, tokens, keep, train: bool):
    dense_init = nn.initializers.xavier_uniform()
    x = nn.Dense(self.width, dtype=self.dtype, kernel_init=dense_init,
                 name="decoder_embed")(tokens)
    mask_token = self.param("mask_token", nn.initializers.normal(0.02), (1, 1, self.width),
                            jnp.float32)
    hidden = jnp.broadcast_to(mask_token.astype(x.dtype),
                              (x.shape[0], self.grid**2, self.width))
    # Each kept patch's token back at its own position, the mask token everywhere else.
    patches = jax.vmap(lambda row, where, kept: row.at[where].set(kept))(hidden, keep, x[:, 1:])
    x = jnp.concatenate([x[:, :1], patches], axis=1)
    x = x + jnp.asarray(vit.sincos_table(self.grid, self.width), self.dtype)[None]
    for index in range(self.depth):
      x = vit.Block(self.num_heads, 0.0, self.dtype, "xavier",
                    name=f"decoder_blocks_{index}")(x, train)
    x = vit.layer_norm(self.dtype, "decoder_norm")(x)
    x = nn.Dense(self.pixels, dtype=self.dtype, kernel_init=dense_init,
                 name="decoder_pred")(x)
    return x[:, 1:].astype(jnp.float32)


class MaskedAutoencoder(nn.Module):
  """Images and kept patches [B, K] -> (the encoder's class token [B, D], float32, and
  every patch's predicted pixels [B, L, p^2 3]). keep=None keeps every patch."""

  backbone: nn.Module
  decoder: Decoder

  def __call__(self, images, train: bool, keep=None):
    if keep is None:
      keep = jnp.broadcast_to(jnp.arange(self.decoder.grid**2), (images.shape[0],
                                                                 self.decoder.grid**2))
    tokens = self.backbone(images, train=train, keep=keep, pool=False)
    return tokens[:, 0].astype(jnp.float32), self.decoder(tokens, keep, train=train)


def create_model(c):
  patch = c.model.patch_size
  decoder = Decoder(width=c.mae.decoder_width, depth=c.mae.decoder_depth,
                    num_heads=c.mae.decoder_heads, grid=view_size(c) // patch,
                    pixels=patch * patch * 3, dtype=models.DTYPES[c.model.dtype])
  return MaskedAutoencoder(models.create_backbone(c.model), decoder)


def view_size(c):
  return c.data.views[GROUP].size or c.data.image_size


# ---------------------------------------------------------------- masking ----
def num_kept(num_patches, mask_ratio):
  """Patches each example keeps; MAE truncates L (1 - ratio) towards zero."""
  return int(num_patches * (1 - mask_ratio))


def random_masking(rng, batch_size, num_patches, mask_ratio):
  """Per-example random masking: (keep [B, K] patch positions, mask [B, L], 1 where the
  patch is hidden). Example i orders its patches by uniform noise from its own key,
  split i of `rng`, and keeps the first K, so the mask depends on the batch position and
  the rng alone, not on how the batch is split over devices."""
  keys = jax.random.split(rng, batch_size)
  noise = jax.vmap(lambda key: jax.random.uniform(key, (num_patches,)))(keys)
  keep = jnp.argsort(noise, axis=1)[:, :num_kept(num_patches, mask_ratio)]
  hidden = jnp.ones((batch_size, num_patches), jnp.float32)
  return keep, jax.vmap(lambda row, where: row.at[where].set(0.0))(hidden, keep)


def patchify(images, patch_size):
  """[B, H, W, C] -> [B, L, p^2 C], patches row-major, each row by row then channel
  (the order of MAE's patchify and of the decoder's outputs)."""
  batch, height, width, channels = images.shape
  rows, cols = height // patch_size, width // patch_size
  x = images.reshape(batch, rows, patch_size, cols, patch_size, channels)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(batch, rows * cols, -1)


def unpatchify(patches, patch_size, channels=3):
  """patchify's inverse for square images."""
  batch, length, _ = patches.shape
  grid = round(length**0.5)
  x = patches.reshape(batch, grid, grid, patch_size, patch_size, channels)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(batch, grid * patch_size, grid * patch_size,
                                               channels)


# ------------------------------------------------------------------- loss ----
def loss(params, state, batch, rng, run):
  del state
  c = run.config
  images = batch[GROUP]
  mask_rng, dropout_rng = jax.random.split(rng)
  patches = patchify(images, c.model.patch_size)
  keep, mask = random_masking(mask_rng, images.shape[0], patches.shape[1], c.mae.mask_ratio)
  # Stochastic depth, if config.model.drop_path_rate asks for it, needs the 'dropout' rng.
  features, predicted = run.model.apply({"params": params}, images, train=True, keep=keep,
                                        rngs={"dropout": dropout_rng})
  value = common.global_loss(run, losses.mae_loss, predicted, patches, mask,
                             norm_pix=c.mae.norm_pix_loss)
  return methods.LossResult(value, {"embedding_std": losses.embedding_std(features)},
                            features=features)


def check(c, num_devices):
  del num_devices
  m = c.mae
  config_lib.require(models.is_vit(c.model), "config.model.arch", c.model.arch,
                     "a ViT ('vit_tiny', 'vit_small', 'vit_base', 'vit_large'): MAE masks patches")
  view = c.data.views.get(GROUP)
  config_lib.require(view is not None and view.count == 1 and not view.transform,
                     f"config.data.views.{GROUP}", view and view.to_dict(),
                     "one view (count=1) without a transform")
  size, patch = view_size(c), c.model.patch_size
  num_patches = (size // patch) ** 2
  config_lib.require(0 < m.mask_ratio < 1 and 0 < num_kept(num_patches, m.mask_ratio) < num_patches,
                     "config.mae.mask_ratio", m.mask_ratio,
                     f"in (0, 1), keeping at least one and hiding at least one of {num_patches} "
                     "patches")
  for name in ("decoder_width", "decoder_depth", "decoder_heads"):
    config_lib.require(isinstance(m[name], int) and m[name] > 0, f"config.mae.{name}", m[name],
                       "a positive integer")
  config_lib.require(m.decoder_width % m.decoder_heads == 0 and m.decoder_width % 4 == 0,
                     "config.mae.decoder_width", m.decoder_width,
                     f"a multiple of 4 (the sin-cos table) and of decoder_heads={m.decoder_heads}")


METHOD = methods.register(methods.Method(
    name="mae", config=config, views=mae_views, create_model=create_model, loss=loss,
    tiny=tiny, check=check, choices={"norm_pix_loss": (True, False)}))
