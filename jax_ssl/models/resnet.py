"""ResNet v1.5 backbones (He et al. 2016; torchvision layout) returning pooled features.

v1.5 puts the stride of a downsampling bottleneck on its 3x3 conv, as torchvision does.
Module and parameter names mirror torchvision (`conv1`, `bn1`, `layer1_0/conv1`,
`layer1_0/downsample_conv`, ...) and padding is symmetric like PyTorch's, so an exporter
can map weights one to one and get the same outputs.
"""
import functools
import re
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp
from flax import traverse_util

STAGE_SIZES = {
  10: (1, 1, 1, 1),
  18: (2, 2, 2, 2),
  34: (3, 4, 6, 3),
  50: (3, 4, 6, 3),
  101: (3, 4, 23, 3),
  152: (3, 8, 36, 3),
  200: (3, 24, 36, 3),
}
BOTTLENECK_FROM_DEPTH = 50
BOTTLENECK_EXPANSION = 4
BASE_WIDTH = 64

# torchvision initialises convs with kaiming_normal_(mode='fan_out', nonlinearity='relu').
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")

ModuleDef = Callable[..., nn.Module]


def scaled_width(base: int, width_multiplier: float) -> int:
  """The one rounding rule for every conv width, shared with `feature_dim`."""
  return int(base * width_multiplier)


def torch_conv(features: int, kernel: int, strides: int = 1, **kwargs) -> nn.Conv:
  """A bias-free conv padded k//2 on every side, as PyTorch pads (SAME pads asymmetrically)."""
  pad = kernel // 2
  return nn.Conv(
    features,
    (kernel, kernel),
    strides=(strides, strides),
    padding=((pad, pad), (pad, pad)),
    use_bias=False,
    kernel_init=conv_kernel_init,
    param_dtype=jnp.float32,
    **kwargs,
  )


class BasicBlock(nn.Module):
  """Two 3x3 convs; the residual branch of ResNet-10/18/34."""

  planes: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  zero_init_last_bn: bool

  @nn.compact
  def __call__(self, x):
    y = self.conv(self.planes, 3, self.strides, name="conv1")(x)
    y = nn.relu(self.norm(name="bn1")(y))
    y = self.conv(self.planes, 3, name="conv2")(y)
    y = last_norm(self.norm, self.zero_init_last_bn, "bn2")(y)
    shortcut = projected_shortcut(x, self.planes, self.strides, self.conv, self.norm)
    return nn.relu(y + shortcut)


class BottleneckBlock(nn.Module):
  """1x1 reduce, 3x3 (carrying the stride: v1.5), 1x1 expand; ResNet-50 and deeper."""

  planes: int
  strides: int
  conv: ModuleDef
  norm: ModuleDef
  zero_init_last_bn: bool

  @nn.compact
  def __call__(self, x):
    out_channels = self.planes * BOTTLENECK_EXPANSION
    y = self.conv(self.planes, 1, name="conv1")(x)
    y = nn.relu(self.norm(name="bn1")(y))
    y = self.conv(self.planes, 3, self.strides, name="conv2")(y)
    y = nn.relu(self.norm(name="bn2")(y))
    y = self.conv(out_channels, 1, name="conv3")(y)
    y = last_norm(self.norm, self.zero_init_last_bn, "bn3")(y)
    shortcut = projected_shortcut(x, out_channels, self.strides, self.conv, self.norm)
    return nn.relu(y + shortcut)


def projected_shortcut(x, out_channels, strides, conv, norm):
  """Identity, or a strided 1x1 conv + BN where the shape changes (torchvision `downsample`)."""
  if strides == 1 and x.shape[-1] == out_channels:
    return x
  x = conv(out_channels, 1, strides, name="downsample_conv")(x)
  return norm(name="downsample_bn")(x)


def last_norm(norm, zero_init, name):
  # A zero scale makes each block start as the identity (Goyal et al. 2017).
  scale_init = nn.initializers.zeros if zero_init else nn.initializers.ones
  return norm(scale_init=scale_init, name=name)


class ResNet(nn.Module):
  """ResNet trunk: NHWC images -> global-average-pooled float32 features [B, C], or with
  `pool=False` the last stage's map [B, h, w, C] (for a decoder: colorization, inpainting).

  The stem's conv takes as many channels as the images have (1 for a lightness channel).
  """

  stage_sizes: Sequence[int]
  bottleneck: bool
  width_multiplier: float = 1.0
  cifar_stem: bool = False
  zero_init_last_bn: bool = False
  dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, train: bool, pool: bool = True):
    conv = functools.partial(torch_conv, dtype=self.dtype)
    norm = functools.partial(
      nn.BatchNorm,
      use_running_average=not train,
      momentum=self.bn_momentum,
      epsilon=self.bn_epsilon,
      dtype=self.dtype,
      param_dtype=jnp.float32,
    )
    block_cls = BottleneckBlock if self.bottleneck else BasicBlock

    x = jnp.asarray(x, self.dtype)
    x = self.stem(x, conv, norm)
    for stage, num_blocks in enumerate(self.stage_sizes):
      planes = scaled_width(BASE_WIDTH * 2**stage, self.width_multiplier)
      for block in range(num_blocks):
        x = block_cls(
          planes=planes,
          strides=2 if stage > 0 and block == 0 else 1,
          conv=conv,
          norm=norm,
          zero_init_last_bn=self.zero_init_last_bn,
          name=f"layer{stage + 1}_{block}",
        )(x)
    if not pool:
      return x
    # Pool in float32: a bf16 mean over 49+ positions loses digits for nothing.
    return jnp.mean(x.astype(jnp.float32), axis=(1, 2))

  def stem(self, x, conv, norm):
    width = scaled_width(BASE_WIDTH, self.width_multiplier)
    if self.cifar_stem:
      # Small images: keep full resolution (SimCLR's CIFAR stem).
      return nn.relu(norm(name="bn1")(conv(width, 3, name="conv1")(x)))
    x = nn.relu(norm(name="bn1")(conv(width, 7, 2, name="conv1")(x)))
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


def uses_bottleneck(depth: int) -> bool:
  return depth >= BOTTLENECK_FROM_DEPTH


def check_depth(depth: int) -> None:
  if depth not in STAGE_SIZES:
    raise ValueError(
      f"Unsupported ResNet depth {depth!r}; accepted depths: {sorted(STAGE_SIZES)}."
    )


def resnet(depth: int, **kwargs) -> ResNet:
  """ResNet of the given depth; kwargs are the other `ResNet` fields."""
  check_depth(depth)
  return ResNet(stage_sizes=STAGE_SIZES[depth], bottleneck=uses_bottleneck(depth), **kwargs)


def feature_dim(depth: int, width_multiplier: float = 1.0) -> int:
  """Channels of the pooled features that `resnet(depth, width_multiplier=...)` returns."""
  check_depth(depth)
  last_planes = scaled_width(BASE_WIDTH * 8, width_multiplier)
  return last_planes * (BOTTLENECK_EXPANSION if uses_bottleneck(depth) else 1)


BLOCK_NAME = re.compile(r"(layer\d+)_(\d+)")


def capture_blocks(module, method_name):
  """A `capture_intermediates` filter: the output of every residual block."""
  return method_name == "__call__" and isinstance(module, (BasicBlock, BottleneckBlock))


def pooled_stages(intermediates):
  """{'layer1': [B, C1], ..., 'layer4': [B, C4]} float32: each stage's output (its last
  block's, from `capture_blocks`) globally average-pooled. An encoder of several ResNets
  (CMC's) gets each stage of all of them concatenated in the order they ran, as its
  features are."""
  last = {}  # (path to the ResNet, stage) -> (block number, output)
  for path, (output,) in traverse_util.flatten_dict(intermediates).items():
    stage, block = BLOCK_NAME.fullmatch(path[-2]).groups()
    key = (path[:-2], stage)
    if key not in last or int(block) > last[key][0]:
      last[key] = (int(block), output)
  stages = {}
  for (_, stage), (_, output) in last.items():
    stages.setdefault(stage, []).append(jnp.mean(output.astype(jnp.float32), axis=(1, 2)))
  return {stage: jnp.concatenate(parts, axis=-1) for stage, parts in stages.items()}
