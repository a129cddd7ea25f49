"""Backbones and heads, built from `config.model`.

`config.model` fields: `arch` ('resnet10' ... 'resnet200', 'vit_tiny' ... 'vit_large'),
`dtype` ('float32' or 'bfloat16'); for ResNets `width_multiplier` (float > 0), `cifar_stem`
(bool), `zero_init_last_bn` (bool); for ViTs `patch_size`, `image_size`, `pos_embed`,
`drop_path_rate`, `frozen_patch_embed`, `features`, `num_heads`, `depth`, `weight_init`
(see config.py).
"""
import flax.linen as nn
import jax.numpy as jnp

from jax_ssl.models import vit as vit_lib
from jax_ssl.models.heads import MLPHead, UpsamplingDecoder
from jax_ssl.models.resnet import BASE_WIDTH, STAGE_SIZES, ResNet, capture_blocks, feature_dim
from jax_ssl.models.resnet import pooled_stages, resnet, scaled_width
from jax_ssl.models.vit import ViT

__all__ = ["ResNet", "ViT", "MLPHead", "UpsamplingDecoder", "create_backbone",
           "backbone_feature_dim", "is_vit", "stage_features", "validate"]

ARCHS = {f"resnet{depth}": depth for depth in STAGE_SIZES}
VIT_ARCHS = {f"vit_{size}": size for size in vit_lib.SIZES}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
REQUIRED_FIELDS = ("arch", "width_multiplier", "cifar_stem", "zero_init_last_bn", "dtype")
VIT_FIELDS = ("patch_size", "image_size", "pos_embed", "drop_path_rate", "frozen_patch_embed",
              "features", "num_heads", "depth", "weight_init")
BOOL_FIELDS = ("cifar_stem", "zero_init_last_bn")


def is_vit(model_config) -> bool:
  return model_config.arch in VIT_ARCHS


def validate(model_config) -> None:
  """Raises ValueError naming the bad `config.model` field, its value and what is accepted.

  Builds nothing, so it can run before any compilation.
  """
  for field in REQUIRED_FIELDS:
    if field not in model_config:
      raise ValueError(
          f"config.model.{field} is missing; required fields: {list(REQUIRED_FIELDS)}.")
  arch, dtype, width = model_config.arch, model_config.dtype, model_config.width_multiplier
  if arch not in ARCHS and arch not in VIT_ARCHS:
    raise ValueError(f"config.model.arch={arch!r} is unknown; accepted: "
                     f"{list(ARCHS) + list(VIT_ARCHS)}.")
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
  if is_vit(model_config):
    validate_vit(model_config)


def _check(ok, field, value, accepted):
  if not ok:
    raise ValueError(f"config.model.{field}={value!r} is invalid; accepted: {accepted}.")


def _is_int(value):
  return isinstance(value, int) and not isinstance(value, bool)


def validate_vit(m) -> None:
  for field in VIT_FIELDS:
    if field not in m:
      raise ValueError(f"config.model.{field} is missing; a ViT needs {list(VIT_FIELDS)}.")
  width, _, heads = vit_lib.SIZES[VIT_ARCHS[m.arch]]
  _check(_is_int(m.patch_size) and m.patch_size > 0, "patch_size", m.patch_size,
         "a positive integer such as 16 or 8")
  _check(_is_int(m.image_size) and m.image_size > 0 and m.image_size % m.patch_size == 0,
         "image_size", m.image_size, f"a multiple of patch_size={m.patch_size}, such as 224")
  _check(m.pos_embed in vit_lib.POS_EMBEDS, "pos_embed", m.pos_embed, list(vit_lib.POS_EMBEDS))
  _check(isinstance(m.drop_path_rate, (int, float)) and 0 <= m.drop_path_rate < 1,
         "drop_path_rate", m.drop_path_rate, "a number in [0, 1)")
  _check(isinstance(m.frozen_patch_embed, bool), "frozen_patch_embed", m.frozen_patch_embed,
         "True or False")
  _check(m.features in vit_lib.FEATURES, "features", m.features, list(vit_lib.FEATURES))
  _check(_is_int(m.num_heads) and m.num_heads >= 0 and width % (m.num_heads or heads) == 0,
         "num_heads", m.num_heads, f"0 (the size's {heads}) or a divisor of the width {width}")
  _check(_is_int(m.depth) and m.depth >= 0, "depth", m.depth, "0 (the size's) or a positive "
         "integer")
  _check(m.weight_init in vit_lib.INITS, "weight_init", m.weight_init, list(vit_lib.INITS))


def create_backbone(model_config) -> nn.Module:
  """The backbone module that `config.model` describes; it returns float32 features [B, C]."""
  validate(model_config)
  if is_vit(model_config):
    m = model_config
    return vit_lib.vit(VIT_ARCHS[m.arch], num_heads=m.num_heads, depth=m.depth,
                       patch_size=m.patch_size,
                       image_size=m.image_size, pos_embed=m.pos_embed,
                       drop_path_rate=float(m.drop_path_rate),
                       frozen_patch_embed=m.frozen_patch_embed, features=m.features,
                       weight_init=m.weight_init, dtype=DTYPES[m.dtype])
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
  if is_vit(model_config):
    return vit_lib.feature_dim(VIT_ARCHS[model_config.arch], model_config.features,
                               model_config.depth)
  return feature_dim(ARCHS[model_config.arch], model_config.width_multiplier)


def stage_features(module, variables, images):
  """{'layer1': [B, C1], ...}: each ResNet stage's output inside `module` (a backbone or a
  method's evaluation encoder), globally average-pooled, in inference mode."""
  _, captured = module.apply(variables, images, train=False, capture_intermediates=capture_blocks,
                             mutable=["intermediates"])
  return pooled_stages(captured["intermediates"])
