"""CPC v2 (Henaff et al. 2020, "Data-Efficient Image Recognition with Contrastive
Predictive Coding"): predicting the encodings of patches below from the context above.

Each view is cut into a grid x grid grid of overlapping patches (the view transform
`patches:G`, transforms.patch_grid: patches of twice the stride, 50% overlap). Every
patch goes through the shared encoder on its own, mean-pooled to z_{i,j}. A context
network of masked (causal, top-to-bottom) convolutions over the grid of z gives
c_{i,j}, which sees only rows u <= i; a linear map W_k of c_{i,j} predicts z_{i+k,j} for
k = 1..K (`steps`). The loss is InfoNCE: each prediction against every patch of the
global batch, the same image's other patches and all other images' (losses.cpc_infonce,
gathered across devices).

The evaluation encoder cuts an image into the same grid, encodes every patch and
averages their features.

Differences from the paper: the encoder keeps config.model's batch normalisation (CPC v2
uses layer normalisation so that patches do not share batch statistics), the patches
share their view's augmentation (the paper augments each patch on its own), and the
context network is a stack of residual masked convolutions rather than a PixelCNN.
"""
import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from jax_ssl import config as config_lib, losses, methods, models
from jax_ssl.data import transforms, views as views_lib
from jax_ssl.methods import common


def config():
  return ml_collections.ConfigDict(dict(
      grid=7,               # patches per side of each view (the paper's 7 x 7)
      steps=5,              # K: predictions of the 1..K rows below each context
      context_dim=512,      # the context network's channels
      context_layers=5,     # its residual masked-convolution blocks
      context_kernel=3,     # their kernel: rows i-2..i, columns j-1..j+1
  ))


def views():
  return views_lib.groups(patches=views_lib.group(transform="patches:7"))


def tiny(c):
  c.cpc.update(grid=3, steps=2, context_dim=32, context_layers=2)
  c.data.views.patches.transform = "patches:3"


def check(c, num_devices):
  del num_devices
  s = c.cpc
  for field in ("steps", "context_dim", "context_layers", "context_kernel"):
    config_lib.require(s[field] >= 1, f"config.cpc.{field}", s[field], ">= 1")
  config_lib.require(s.grid >= 2, "config.cpc.grid", s.grid, ">= 2 (a row to predict from)")
  config_lib.require(s.steps < s.grid, "config.cpc.steps", s.steps,
                     f"< config.cpc.grid={s.grid} (rows below a context)")
  transform = c.data.views.patches.transform if "patches" in c.data.views else None
  config_lib.require(transform == f"patches:{s.grid}", "config.data.views.patches.transform",
                     transform, f"'patches:{s.grid}' (config.cpc.grid)")
  for size, field in ((c.data.views.patches.size or c.data.image_size,
                       "config.data.views.patches.size"),
                      (c.data.image_size, "config.data.image_size")):
    config_lib.require(size >= s.grid + 1, field, size,
                       f">= config.cpc.grid + 1 = {s.grid + 1} (patches of at least 2 pixels)")


class MaskedConv(nn.Module):
  """A convolution over the grid [B, G, G, C] whose output at row i sees rows i-k+1..i
  only: padded above, not below (causal from top to bottom)."""
  features: int
  kernel: int

  @nn.compact
  def __call__(self, x):
    pad = self.kernel // 2
    return nn.Conv(self.features, (self.kernel, self.kernel),
                   padding=((self.kernel - 1, 0), (pad, self.kernel - 1 - pad)))(x)


class ContextNetwork(nn.Module):
  """c_{i,j} from z_{u,v}, u <= i: a projection, then residual ReLU-masked-conv blocks."""
  dim: int
  layers: int
  kernel: int

  @nn.compact
  def __call__(self, z):
    x = nn.Dense(self.dim)(z)
    for _ in range(self.layers):
      x = x + MaskedConv(self.dim, self.kernel)(nn.relu(x))
    return x


class CPCModel(nn.Module):
  """The patch encoder, the context network and the K linear predictions."""
  backbone: nn.Module
  context: nn.Module
  steps: int

  def encode(self, patches, train: bool):
    """Patch grids [B, G^2, p, p, C] -> their encodings z [B, G, G, D]."""
    batch, count = patches.shape[:2]
    grid = round(count ** 0.5)
    z = self.backbone(patches.reshape((batch * count,) + patches.shape[2:]), train=train)
    return z.reshape(batch, grid, grid, z.shape[-1])

  @nn.compact
  def __call__(self, patches, train: bool):
    """(per-image features [B, D], z [B, G, G, D], predictions [B, K, G, G, D])."""
    z = self.encode(patches, train)
    c = self.context(z)
    predictions = nn.Dense(self.steps * z.shape[-1], name="predictions")(c)
    predictions = predictions.reshape(c.shape[:3] + (self.steps, z.shape[-1]))
    return jnp.mean(z, axis=(1, 2)), z, jnp.moveaxis(predictions, 3, 1)


class CPCEncoder(nn.Module):
  """The evaluation encoder: images -> the patch grid -> the mean of the patch features."""
  backbone: nn.Module
  grid: int

  def __call__(self, images, train: bool):
    patches = transforms.patch_grid(images, self.grid)  # [B, G^2, p, p, C]
    batch, count = patches.shape[:2]
    z = self.backbone(patches.reshape((batch * count,) + patches.shape[2:]), train=train)
    return jnp.mean(z.reshape(batch, count, z.shape[-1]), axis=1)


def create_model(c):
  s = c.cpc
  return CPCModel(models.create_backbone(c.model),
                  ContextNetwork(s.context_dim, s.context_layers, s.context_kernel), s.steps)


def encoder(c):
  return methods.Encoder(
      module=CPCEncoder(models.create_backbone(c.model), c.cpc.grid),
      variables=lambda params, stats: {"params": {"backbone": params["backbone"]},
                                       "batch_stats": {"backbone": stats.get("backbone", {})}})


def init_model(run, rng, batch):
  return run.model.init(rng, batch["patches"], train=False)


def loss(params, state, batch, rng, run):
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, z, predictions = forward(batch["patches"])
  value = common.global_loss(run, losses.cpc_infonce, predictions, z)
  patches = z.reshape(-1, z.shape[-1])
  metrics = {"embedding_std": losses.embedding_std(patches)}
  return methods.LossResult(value, metrics, forward.batch_stats, None, features)


METHOD = methods.register(methods.Method(
    name="cpc", config=config, views=views, create_model=create_model, loss=loss, tiny=tiny,
    check=check, init_model=init_model, encoder=encoder))
