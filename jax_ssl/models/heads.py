"""Projection and prediction heads.

`MLPHead` follows SimCLR v2's `ProjectionHead` (google-research/simclr, tf2/model.py):
hidden layers are Dense without bias -> BN (with centering) -> ReLU, and the output layer
is Dense without bias -> BN without centering and no ReLU. Dense kernels start from
N(0, 0.01^2) as there. With `use_bn=False` it is a plain MLP with biases (MoCo v2 style).
"""
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# SimCLR v2 initialises its head's Dense kernels with RandomNormal(stddev=0.01).
simclr_dense_init = nn.initializers.normal(stddev=0.01)


class MLPHead(nn.Module):
  """MLP head: [B, D] -> [B, output_dim] float32."""

  hidden_dims: Sequence[int]
  output_dim: int
  use_bn: bool = True
  last_bn: bool = True
  last_bn_scale: bool = True  # MoCo v3's output BN is affine-free
  output_bias: Optional[bool] = None  # default: a bias unless the output has BN
  dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5
  kernel_init: Callable = simclr_dense_init

  @nn.compact
  def __call__(self, x, train: bool):
    x = jnp.asarray(x, self.dtype)
    for i, width in enumerate(self.hidden_dims):
      # A bias before BN is cancelled by the mean subtraction, so drop it.
      x = self.dense(width, use_bias=not self.use_bn, name=f"dense_{i}")(x)
      if self.use_bn:
        x = self.norm(train, center=True, name=f"bn_{i}")(x)
      x = nn.relu(x)
    output_bn = self.use_bn and self.last_bn
    use_bias = not output_bn if self.output_bias is None else self.output_bias
    x = self.dense(self.output_dim, use_bias=use_bias, name="dense_out")(x)
    if output_bn:
      # No centering on the output BN (SimCLR v2: `center=use_bias` with use_bias=False).
      x = self.norm(train, center=False, scale=self.last_bn_scale, name="bn_out")(x)
    return x.astype(jnp.float32)

  def dense(self, features, use_bias, name):
    return nn.Dense(
      features,
      use_bias=use_bias,
      kernel_init=self.kernel_init,
      dtype=self.dtype,
      param_dtype=jnp.float32,
      name=name,
    )

  def norm(self, train, center, name, scale=True):
    return nn.BatchNorm(
      use_running_average=not train,
      momentum=self.bn_momentum,
      epsilon=self.bn_epsilon,
      use_bias=center,
      use_scale=scale,
      dtype=self.dtype,
      param_dtype=jnp.float32,
      name=name,
    )


class WeightNormDense(nn.Module):
  """A bias-free Dense layer whose kernel's columns are divided by their norms: PyTorch's
  weight_norm. Each output's weight vector has norm 1 (DINO's `norm_last_layer=True`,
  weight_g fixed to 1), or with `learn_norm` the norm `scale` [1, features], starting at
  1, is trained (as weight_g, 2-D, so weight decay reaches it as it does there).

  The directions start as PyTorch's default Linear (uniform within 1/sqrt(fan_in)); their
  scale still matters, since the gradient that reaches them shrinks as they grow.
  """
  features: int
  learn_norm: bool = False
  kernel_init: Callable = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features), jnp.float32)
    weight = kernel / jnp.sqrt(jnp.sum(kernel * kernel, axis=0, keepdims=True))
    if self.learn_norm:
      weight = weight * self.param("scale", nn.initializers.ones, (1, self.features),
                                   jnp.float32)
    return x.astype(jnp.float32) @ weight


class DINOHead(nn.Module):
  """DINO's projection head (Caron et al. 2021; the official DINOHead): Dense layers with
  biases and exact GELU (BN before the GELU with `use_bn`), a linear bottleneck, l2
  normalisation, then a WeightNormDense of `output_dim` outputs: [B, D] -> [B, output_dim]
  float32. Dense kernels start from N(0, 0.02^2) and biases from 0, as there."""

  hidden_dims: Sequence[int] = (2048, 2048)
  bottleneck_dim: int = 256
  output_dim: int = 65536
  use_bn: bool = False
  norm_last_layer: bool = True  # False: each output's norm is trained
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    x = jnp.asarray(x, self.dtype)
    init = nn.initializers.normal(stddev=0.02)
    for i, width in enumerate(self.hidden_dims):
      x = nn.Dense(width, kernel_init=init, dtype=self.dtype, name=f"dense_{i}")(x)
      if self.use_bn:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                         dtype=self.dtype, name=f"bn_{i}")(x)
      x = nn.gelu(x, approximate=False)
    x = nn.Dense(self.bottleneck_dim, kernel_init=init, dtype=self.dtype, name="bottleneck")(x)
    x = l2_normalize(x.astype(jnp.float32))
    return WeightNormDense(self.output_dim, learn_norm=not self.norm_last_layer,
                           name="last_layer")(x)


def l2_normalize(x, eps=1e-12):
  """PyTorch's F.normalize: x / max(|x|, eps)."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


class UpsamplingDecoder(nn.Module):
  """A backbone's map [B, h, w, C] -> per-pixel outputs [B, S, S, output_dim] float32.

  Each of `widths` is a 4x4 transposed conv of stride 2 (doubling the map) -> BN -> ReLU,
  the context encoder's decoder (Pathak et al. 2016); a bilinear resize then lands on
  `output_size` where the doublings do not, and a 3x3 conv with a bias gives the outputs.
  """

  widths: Sequence[int]
  output_dim: int
  output_size: int
  dtype: Any = jnp.float32
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, x, train: bool):
    x = jnp.asarray(x, self.dtype)
    for i, width in enumerate(self.widths):
      x = nn.ConvTranspose(width, (4, 4), strides=(2, 2), padding="SAME", use_bias=False,
                           dtype=self.dtype, param_dtype=jnp.float32, name=f"deconv_{i}")(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                       dtype=self.dtype, param_dtype=jnp.float32, name=f"bn_{i}")(x)
      x = nn.relu(x)
    if x.shape[1:3] != (self.output_size, self.output_size):
      shape = (x.shape[0], self.output_size, self.output_size, x.shape[-1])
      x = jax.image.resize(x, shape, "linear")
    x = nn.Conv(self.output_dim, (3, 3), padding="SAME", dtype=self.dtype,
                param_dtype=jnp.float32, name="conv_out")(x)
    return x.astype(jnp.float32)
