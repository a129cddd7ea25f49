"""Vision Transformers (Dosovitskiy et al. 2021) returning features, in timm's layout.

Pre-norm blocks (LayerNorm eps 1e-6, MLP ratio 4, exact GELU), a class token, a patch
projection conv, learned or fixed 2-D sin-cos position embeddings, stochastic depth and
a final LayerNorm. Module and parameter names mirror timm's `VisionTransformer`
(`patch_embed/proj`, `cls_token`, `pos_embed`, `blocks_0/attn/qkv`, `blocks_0/mlp/fc1`,
`norm`) and q, k and v share one fused `qkv` layer in timm's order, so an exporter maps
weights one to one; without the classifier the parameter count is timm's
(vit_small_patch16_224: 21,665,664; a fixed sin-cos table is a constant, not a parameter).

Attention goes through `jax.nn.dot_product_attention`, which picks a fused kernel on
GPUs and keeps logits and softmax in float32 under bfloat16 activations.
"""
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# (width, depth, heads) of timm's vit_tiny / vit_small / vit_base / vit_large.
SIZES = {
  "tiny": (192, 12, 3),
  "small": (384, 12, 6),
  "base": (768, 12, 12),
  "large": (1024, 24, 16),
}
MLP_RATIO = 4
LAYER_NORM_EPS = 1e-6
POS_EMBEDS = ("learned", "sincos")
# cls: the class token after the final norm. mean_patch: the mean of the normed patch
# tokens. cls_last4: DINO's linear protocol for ViT-S, the normed class tokens of the last
# 4 blocks concatenated. cls_mean_patch: DINO's for ViT-B, the class token and mean_patch.
FEATURES = {"cls": 1, "mean_patch": 1, "cls_last4": 4, "cls_mean_patch": 2}
# trunc_normal: timm's and DINO's (linear layers and embeddings N(0, 0.02), the patch conv
# PyTorch's default). xavier: MoCo v3's and MAE's (Glorot uniform,
# with q, k and v each its own matrix and the patch conv as one matrix).
INITS = ("trunc_normal", "xavier")
SINCOS_TEMPERATURE = 10_000.0
LAST_BLOCKS = 4

# timm's trunc_normal_(std=0.02) truncates at +-2 in absolute terms, 100 std: a plain normal.
trunc_normal_002 = nn.initializers.normal(0.02)
normal_1e6 = nn.initializers.normal(1e-6)


def xavier_qkv_init(key, shape, dtype=jnp.float32):
  """Glorot uniform on [D, 3D] as three [D, D] matrices (MoCo v3's qkv init)."""
  fan_in, fan_out = shape[0], shape[1] // 3
  return uniform_init(math.sqrt(6.0 / (fan_in + fan_out)))(key, shape, dtype)


def dense_inits(weight_init):
  """(kernel init, qkv kernel init) of the linear layers."""
  if weight_init == "xavier":
    return nn.initializers.xavier_uniform(), xavier_qkv_init
  return trunc_normal_002, trunc_normal_002


def sincos_table(grid: int, width: int) -> np.ndarray:
  """MoCo v3's fixed embedding [1 + grid^2, width]: a zero row for the class token, then
  for the patch in row r and column c (row-major, as patches are flattened)
  [sin(r w), cos(r w), sin(c w), cos(c w)] with w_i = 10000^(-i / (width / 4)).

  MAE's table puts the column's half first; a permutation of the width, learned around
  equally well.
  """
  if width % 4:
    raise ValueError(f"a 2-D sin-cos position embedding needs a width divisible by 4, "
                     f"got {width}")
  quarter = width // 4
  omega = 1.0 / SINCOS_TEMPERATURE ** (np.arange(quarter, dtype=np.float64) / quarter)
  rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
  out_r = rows.reshape(-1, 1) * omega
  out_c = cols.reshape(-1, 1) * omega
  patches = np.concatenate([np.sin(out_r), np.cos(out_r), np.sin(out_c), np.cos(out_c)], 1)
  return np.concatenate([np.zeros((1, width)), patches]).astype(np.float32)


def resize_pos_embed(table, grid: int):
  """[1, 1 + g^2, D] -> [1, 1 + grid^2, D]: the patch part resized bicubically on its
  grid, the class token's row kept (as timm and DINO do for other input sizes).

  jax.image's cubic kernel is Keys' a = -0.5 (PIL's, TensorFlow's), not PyTorch's -0.75,
  so features at other sizes differ slightly from timm's; a constant table stays constant.
  """
  old_grid = math.isqrt(table.shape[1] - 1)
  if old_grid == grid:
    return table
  patches = table[0, 1:].reshape(old_grid, old_grid, -1)
  patches = jax.image.resize(patches, (grid, grid, patches.shape[-1]), "bicubic",
                             antialias=False)
  return jnp.concatenate([table[:, :1], patches.reshape(1, grid * grid, -1)], axis=1)


def uniform_init(limit):
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -limit, limit)


class PatchEmbed(nn.Module):
  """A patch_size x patch_size conv with stride patch_size, named `proj` as in timm."""

  width: int
  patch_size: int
  weight_init: str
  dtype: Any

  @nn.compact
  def __call__(self, images):
    fan_in = self.patch_size**2 * images.shape[-1]
    if self.weight_init == "xavier":  # the conv as one [fan_in, D] matrix
      kernel_init = nn.initializers.xavier_uniform(in_axis=(0, 1, 2), out_axis=3)
      bias_init = nn.initializers.zeros
    else:  # PyTorch's default conv init: U(+-1/sqrt(fan_in)) for weight and bias
      kernel_init = bias_init = uniform_init(1 / math.sqrt(fan_in))
    return nn.Conv(self.width, (self.patch_size,) * 2, strides=(self.patch_size,) * 2,
                   padding="VALID", dtype=self.dtype, kernel_init=kernel_init,
                   bias_init=bias_init, name="proj")(images)


class Attention(nn.Module):
  """Multi-head self-attention with one fused qkv projection, as timm lays it out."""

  num_heads: int
  dtype: Any
  weight_init: str

  @nn.compact
  def __call__(self, x):
    batch, tokens, width = x.shape
    kernel_init, qkv_init = dense_inits(self.weight_init)
    qkv = nn.Dense(3 * width, dtype=self.dtype, kernel_init=qkv_init, name="qkv")(x)
    # timm's order: [q | k | v], each head-major.
    qkv = qkv.reshape(batch, tokens, 3, self.num_heads, width // self.num_heads)
    out = jax.nn.dot_product_attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2])
    out = out.reshape(batch, tokens, width)
    return nn.Dense(width, dtype=self.dtype, kernel_init=kernel_init, name="proj")(out)


class Mlp(nn.Module):
  dtype: Any
  weight_init: str

  @nn.compact
  def __call__(self, x):
    kernel_init, _ = dense_inits(self.weight_init)
    width = x.shape[-1]
    x = nn.Dense(MLP_RATIO * width, dtype=self.dtype, kernel_init=kernel_init, name="fc1")(x)
    x = nn.gelu(x, approximate=False)  # torch.nn.GELU's exact form
    return nn.Dense(width, dtype=self.dtype, kernel_init=kernel_init, name="fc2")(x)


def layer_norm(dtype, name):
  return nn.LayerNorm(LAYER_NORM_EPS, dtype=dtype, param_dtype=jnp.float32, name=name)


class Block(nn.Module):
  """x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x)))."""

  num_heads: int
  drop_path: float
  dtype: Any
  weight_init: str

  @nn.compact
  def __call__(self, x, train: bool):
    # Stochastic depth: one keep/drop draw per example (rng 'dropout'), rescaled by 1/keep.
    # A forward in training mode without the rng, an EMA teacher's, drops no path.
    drop = nn.Dropout(self.drop_path, broadcast_dims=(1, 2),
                      deterministic=not train or not self.has_rng("dropout"))
    attn = Attention(self.num_heads, self.dtype, self.weight_init, name="attn")
    x = x + drop(attn(layer_norm(self.dtype, "norm1")(x)))
    mlp = Mlp(self.dtype, self.weight_init, name="mlp")
    return x + drop(mlp(layer_norm(self.dtype, "norm2")(x)))


def drop_path_rates(last_rate: float, depth: int) -> list:
  """Each block's stochastic-depth rate: from 0 at the first to `last_rate` at the last."""
  return [float(rate) for rate in np.linspace(0.0, last_rate, depth)]


class ViT(nn.Module):
  """ViT trunk: NHWC images -> float32 features [B, F] (`features`, see FEATURES).

  `image_size` is the training input size: its patch grid sets the position table, which
  other input sizes (multi-crop's 96-pixel crops) interpolate. `frozen_patch_embed`
  stops the gradient at the patch projection (MoCo v3's random patch projection); the
  optimizer must then neither decay nor move it. Stochastic depth (`drop_path_rate`, the
  last block's rate, rising linearly from 0 at the first) applies in training when a
  'dropout' rng is given (methods.common.Forward gives the online network one; the EMA
  teachers' forward none).
  """

  width: int
  depth: int
  num_heads: int
  patch_size: int = 16
  image_size: int = 224
  pos_embed: str = "learned"
  drop_path_rate: float = 0.0
  frozen_patch_embed: bool = False
  features: str = "cls"
  weight_init: str = "trunc_normal"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool, keep=None, pool: bool = True):
    """`keep` [B, K], patch positions per example: only those patches (and the class
    token) enter the blocks (MAE's encoder). pool=False returns the normed tokens
    [B, 1 + K, D] instead of the features."""
    grid = self.patch_grid(x.shape)
    x = self.embed_patches(jnp.asarray(x, self.dtype))
    # DINO draws the class token like the weights; MoCo v3 (timm) starts it near zero.
    cls_init = trunc_normal_002 if self.weight_init == "trunc_normal" else normal_1e6
    cls_token = self.param("cls_token", cls_init, (1, 1, self.width), jnp.float32)
    cls_token = jnp.broadcast_to(cls_token, (x.shape[0], 1, self.width)).astype(self.dtype)
    x = jnp.concatenate([cls_token, x], axis=1)
    x = x + resize_pos_embed(self.position_table(), grid).astype(self.dtype)
    if keep is not None:  # positions are added first, so each kept patch keeps its own
      patches = jnp.take_along_axis(x[:, 1:], keep[..., None], axis=1)
      x = jnp.concatenate([x[:, :1], patches], axis=1)
    rates = drop_path_rates(self.drop_path_rate, self.depth)
    norm = layer_norm(self.dtype, "norm")
    last_outputs = []
    for index in range(self.depth):
      x = Block(self.num_heads, rates[index], self.dtype, self.weight_init,
                name=f"blocks_{index}")(x, train)
      if self.features == "cls_last4" and index >= self.depth - LAST_BLOCKS:
        last_outputs.append(norm(x)[:, 0])
    x = norm(x)
    if not pool:
      return x
    return self.pool(x.astype(jnp.float32), last_outputs)

  def patch_grid(self, shape):
    """Patches per side of the input; the image must be square and tile into patches."""
    height, width = shape[1], shape[2]
    if height != width or height % self.patch_size:
      raise ValueError(f"ViT input of {height}x{width} pixels: expected a square image whose "
                       f"side is a multiple of config.model.patch_size={self.patch_size}")
    return height // self.patch_size

  def embed_patches(self, images):
    """[B, H, W, 3] -> [B, patches, D], patches row-major as timm flattens them."""
    embed = PatchEmbed(self.width, self.patch_size, self.weight_init, self.dtype,
                       name="patch_embed")
    x = embed(images)
    if self.frozen_patch_embed:
      x = jax.lax.stop_gradient(x)
    return x.reshape(x.shape[0], -1, self.width)

  def position_table(self):
    """[1, 1 + g^2, D] for the training grid g: a parameter, or the fixed sin-cos table."""
    grid = self.image_size // self.patch_size
    shape = (1, 1 + grid * grid, self.width)
    if self.pos_embed == "sincos":
      return jnp.asarray(sincos_table(grid, self.width))[None]
    return self.param("pos_embed", trunc_normal_002, shape, jnp.float32)

  def pool(self, tokens, last_outputs):
    cls_token, mean_patch = tokens[:, 0], jnp.mean(tokens[:, 1:], axis=1)
    if self.features == "mean_patch":
      return mean_patch
    if self.features == "cls_last4":
      return jnp.concatenate(last_outputs, axis=-1).astype(jnp.float32)
    if self.features == "cls_mean_patch":
      return jnp.concatenate([cls_token, mean_patch], axis=-1)
    return cls_token


def vit(size: str, num_heads: int = 0, depth: int = 0, **kwargs) -> ViT:
  """ViT of a SIZES entry; num_heads and depth 0 keep the size's (MoCo v3's ViT-S takes 12
  heads)."""
  check_size(size)
  width, default_depth, default_heads = SIZES[size]
  return ViT(width=width, depth=depth or default_depth, num_heads=num_heads or default_heads,
             **kwargs)


def check_size(size: str) -> None:
  if size not in SIZES:
    raise ValueError(f"Unsupported ViT size {size!r}; accepted sizes: {list(SIZES)}.")


def feature_dim(size: str, features: str = "cls", depth: int = 0) -> int:
  """Features per example that `vit(size, features=..., depth=...)` returns."""
  check_size(size)
  width, default_depth, _ = SIZES[size]
  depth = depth or default_depth
  blocks = min(depth, LAST_BLOCKS) if features == "cls_last4" else FEATURES[features]
  return width * blocks
