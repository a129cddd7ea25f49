"""Backbones and heads, built from `config.model`.

`config.model` fields: `arch` ('resnet10' ... 'resnet200'), `width_multiplier` (float > 0),
`cifar_stem` (bool), `zero_init_last_bn` (bool), `dtype` ('float32' or 'bfloat16').
"""
import flax.linen as nn
import jax.numpy as jnp

from jax_ssl.models.heads import MLPHead, UpsamplingDecoder
from jax_ssl.models.resnet import BASE_WIDTH, STAGE_SIZES, ResNet, capture_blocks, feature_dim
from jax_ssl.models.resnet import pooled_stages, resnet, scaled_width

__all__ = ["ResNet", "MLPHead", "UpsamplingDecoder", "create_backbone", "backbone_feature_dim",
           "stage_features", "validate"]

ARCHS = {f"resnet{depth}": depth for depth in STAGE_SIZES}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
REQUIRED_FIELDS = ("arch", "width_multiplier", "cifar_stem", "zero_init_last_bn", "dtype")
BOOL_FIELDS = ("cifar_stem", "zero_init_last_bn")


def validate(model_config) -> None:
  """Raises ValueError naming the bad `config.model` field, its value and what is accepted.

  Builds nothing, so it can run before any compilation.
  """
  for field in REQUIRED_FIELDS:
    if field not in model_config:
      raise ValueError(
          f"config.model.{field} is missing; required fields: {list(REQUIRED_FIELDS)}.")
  arch, dtype, width = model_config.arch, model_config.dtype, model_config.width_multiplier
  if arch not in ARCHS:
    raise ValueError(f"config.model.arch={arch!r} is unknown; accepted: {list(ARCHS)}.")
  if dtype not in DTYPES:
    raise ValueError(f"config.model.dtype={dtype!r} is unknown; accepted: {list(DTYPES)}.")
  # The stem is the narrowest conv; it must keep at least one channel.
  is_number = isinstance(width, (int, float)) and not isinstance(width, bool)
  if not is_number or scaled_width(BASE_WIDTH, width) < 1:
    raise ValueError(
      f"config.model.width_multiplier={width!r} is invalid; "
      "accepted: a number >= 1/64, such as 0.25, 1 or 2."
    )
  for field in BOOL_FIELDS:
    value = model_config[field]
    if not isinstance(value, bool):
      raise ValueError(f"config.model.{field}={value!r} is invalid; accepted: True or False.")


def create_backbone(model_config) -> nn.Module:
  """The backbone module that `config.model` describes; it returns float32 features [B, C]."""
  validate(model_config)
  return resnet(
    ARCHS[model_config.arch],
    width_multiplier=model_config.width_multiplier,
    cifar_stem=model_config.cifar_stem,
    zero_init_last_bn=model_config.zero_init_last_bn,
    dtype=DTYPES[model_config.dtype],
  )


def backbone_feature_dim(model_config) -> int:
  """Channels of the backbone's pooled features, without building it."""
  validate(model_config)
  return feature_dim(ARCHS[model_config.arch], model_config.width_multiplier)


def stage_features(module, variables, images):
  """{'layer1': [B, C1], ...}: each ResNet stage's output inside `module` (a backbone or a
  method's evaluation encoder), globally average-pooled, in inference mode."""
  _, captured = module.apply(variables, images, train=False, capture_intermediates=capture_blocks,
                             mutable=["intermediates"])
  return pooled_stages(captured["intermediates"])
