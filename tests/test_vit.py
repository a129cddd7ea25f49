"""Vision Transformers: timm's parameter counts, position embeddings, stochastic depth, the
frozen patch projection, feature options and config errors."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_ssl import config as config_lib, models
from jax_ssl.models import vit as vit_lib

# sum(p.numel()) of timm.create_model(name, num_classes=0) with timm 1.0.31.
TIMM_COUNTS = {
  ("vit_tiny", 16): 5_524_416,   # vit_tiny_patch16_224
  ("vit_small", 16): 21_665_664,  # vit_small_patch16_224
  ("vit_base", 16): 85_798_656,   # vit_base_patch16_224
  ("vit_large", 16): 303_301_632,  # vit_large_patch16_224
  ("vit_small", 8): 21_670_272,   # vit_small_patch8_224
  ("vit_base", 8): 85_807_872,    # vit_base_patch8_224
}


def vit_config(**overrides):
  c = config_lib.base_config().model
  c.update({"arch": "vit_tiny", **overrides})
  return c


def param_shapes(backbone, size):
  return jax.eval_shape(lambda: backbone.init(jax.random.key(0), jnp.zeros((1, size, size, 3)),
                                              train=False))["params"]


def count(tree):
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def small_vit(**kwargs):
  """Two blocks of width 32: every code path, compiled in a second."""
  fields = dict(width=32, depth=2, num_heads=2, patch_size=8, image_size=32)
  return models.ViT(**{**fields, **kwargs})


def run(model, variables, x, train=False, rng=None):
  """model.apply compiled: a whole-program compile costs less than eager op by op."""
  rngs = {} if rng is None else {"dropout": rng}
  return jax.jit(lambda v, x: model.apply(v, x, train=train, rngs=rngs))(variables, x)


def init(model, size=32):
  return jax.jit(lambda: model.init(jax.random.key(0), jnp.zeros((1, size, size, 3)),
                                    train=False))()


def images(size, batch=2, seed=0):
  return jax.random.uniform(jax.random.key(seed), (batch, size, size, 3))


@pytest.mark.parametrize("arch,patch", sorted(TIMM_COUNTS))
def test_param_count_equals_timm_without_the_classifier(arch, patch):
  backbone = models.create_backbone(vit_config(arch=arch, patch_size=patch))
  assert count(param_shapes(backbone, 224)) == TIMM_COUNTS[(arch, patch)]


def test_a_fixed_sincos_table_is_no_parameter():
  backbone = models.create_backbone(vit_config(pos_embed="sincos"))
  params = param_shapes(backbone, 224)
  assert "pos_embed" not in params
  assert count(params) == TIMM_COUNTS[("vit_tiny", 16)] - 197 * 192


def test_names_and_shapes_follow_timm():
  params = param_shapes(models.create_backbone(vit_config()), 224)
  assert params["cls_token"].shape == (1, 1, 192)
  assert params["pos_embed"].shape == (1, 197, 192)
  assert params["patch_embed"]["proj"]["kernel"].shape == (16, 16, 3, 192)
  block = params["blocks_11"]
  assert block["attn"]["qkv"]["kernel"].shape == (192, 576)
  assert block["attn"]["proj"]["kernel"].shape == (192, 192)
  assert block["mlp"]["fc1"]["kernel"].shape == (192, 768)
  assert block["mlp"]["fc2"]["kernel"].shape == (768, 192)
  assert set(block["norm1"]) == {"scale", "bias"} and "norm" in params
  assert "blocks_12" not in params


def test_features_at_the_training_size_and_at_multi_crop_size():
  backbone = models.create_backbone(vit_config())
  variables = jax.eval_shape(lambda: backbone.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)),
                                                   train=False))
  for size in (224, 96):
    out = jax.eval_shape(lambda v, x: backbone.apply(v, x, train=False), variables,
                         jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32))
    assert out.shape == (2, 192) and out.dtype == jnp.float32
  # Run for real on a small ViT: 32-pixel training size, 16-pixel crops.
  small = small_vit()
  variables = init(small)
  for size in (32, 16):
    out = run(small, variables, images(size))
    assert out.shape == (2, 32) and np.all(np.isfinite(out))


def moco_v3_sincos(grid, width):
  """MoCo v3's build_2d_sincos_position_embedding, element by element."""
  quarter = width // 4
  table = np.zeros((1 + grid * grid, width))
  for token in range(grid * grid):
    # torch.meshgrid(arange(w), arange(h)) flattened: its 'w' is the patch's row.
    row, col = divmod(token, grid)
    for i in range(quarter):
      omega = 1.0 / 10000 ** (i / quarter)
      table[1 + token, [i, quarter + i, 2 * quarter + i, 3 * quarter + i]] = (
          np.sin(row * omega), np.cos(row * omega), np.sin(col * omega), np.cos(col * omega))
  return table


def test_sincos_table_matches_moco_v3():
  np.testing.assert_allclose(vit_lib.sincos_table(4, 16), moco_v3_sincos(4, 16), atol=1e-6)
  np.testing.assert_allclose(vit_lib.sincos_table(14, 384), moco_v3_sincos(14, 384), atol=1e-6)
  with pytest.raises(ValueError, match="divisible by 4"):
    vit_lib.sincos_table(4, 18)


def test_sincos_model_adds_the_table_as_a_learned_one_would():
  fixed = small_vit(pos_embed="sincos")
  variables = init(fixed)
  table = jnp.asarray(vit_lib.sincos_table(4, 32))[None]
  params = {**variables["params"], "pos_embed": table}
  np.testing.assert_allclose(run(small_vit(), {"params": params}, images(32)),
                             run(fixed, variables, images(32)), atol=1e-6)


def test_resizing_keeps_a_constant_table_constant_and_the_class_row():
  rng = np.random.default_rng(0)
  cls_row = rng.normal(size=(1, 1, 8)).astype(np.float32)
  patch_value = rng.normal(size=8).astype(np.float32)
  table = np.concatenate([cls_row, np.broadcast_to(patch_value, (1, 196, 8))], axis=1)
  for grid in (6, 14, 20):
    resized = np.asarray(vit_lib.resize_pos_embed(jnp.asarray(table), grid))
    assert resized.shape == (1, 1 + grid * grid, 8)
    np.testing.assert_array_equal(resized[:, :1], cls_row)
    np.testing.assert_allclose(resized[0, 1:], np.broadcast_to(patch_value, (grid * grid, 8)),
                               atol=1e-5)


def test_resizing_follows_a_smooth_table_and_keeps_its_orientation():
  """A table that rises along rows only still rises along rows only on a coarser grid."""
  rows = np.repeat(np.arange(14.0), 14)
  table = np.concatenate([np.zeros((1, 1)), rows[:, None]])[None].astype(np.float32)
  resized = np.asarray(vit_lib.resize_pos_embed(jnp.asarray(table), 7))[0, 1:, 0].reshape(7, 7)
  np.testing.assert_allclose(resized, resized[:, :1] * np.ones((1, 7)), atol=1e-5)
  assert np.all(np.diff(resized[:, 0]) > 1.5)


@pytest.mark.parametrize("size", [30, 20])
def test_an_input_that_does_not_tile_into_patches_is_a_clear_error(size):
  small = small_vit()
  variables = jax.eval_shape(lambda: small.init(jax.random.key(0), images(32), train=False))
  with pytest.raises(ValueError, match=rf"{size}x{size} pixels.*patch_size=8"):
    jax.eval_shape(lambda: small.apply(variables, images(size), train=False))


def test_drop_path_is_the_identity_at_evaluation_and_drops_whole_examples_in_training():
  dropping, plain = small_vit(drop_path_rate=0.9), small_vit()
  variables = init(plain)
  x = images(32, batch=16)
  reference = run(plain, variables, x)
  np.testing.assert_array_equal(run(dropping, variables, x), reference)
  np.testing.assert_array_equal(run(plain, variables, x, train=True), reference)
  trained = run(dropping, variables, x, train=True, rng=jax.random.key(1))
  assert np.all(np.isfinite(trained)) and not np.allclose(trained, reference)
  # Rates rise from 0 at the first block to 0.9 at the last. Where both of the last block's
  # branches are dropped (p = 0.81) an example's output is that of the first block alone.
  params = {k: v for k, v in variables["params"].items() if k != "blocks_1"}
  first_block_only = run(small_vit(depth=1), {"params": params}, x)
  skipped = np.all(np.isclose(trained, first_block_only, atol=1e-5), axis=1)
  assert 8 <= skipped.sum() < 16
  np.testing.assert_allclose(vit_lib.drop_path_rates(0.1, 12), np.arange(12) / 110)


def test_frozen_patch_projection_gets_zero_gradient():
  def gradients(frozen):
    model = small_vit(frozen_patch_embed=frozen)
    variables = init(model)
    loss = lambda p: jnp.sum(model.apply({"params": p}, images(32), train=True) ** 2)  # noqa: E731
    return jax.jit(jax.grad(loss))(variables["params"])

  frozen, trained = gradients(True), gradients(False)
  for leaf in jax.tree.leaves(frozen["patch_embed"]):
    np.testing.assert_array_equal(leaf, 0.0)
  for grads in (frozen, trained):
    assert np.abs(grads["cls_token"]).max() > 0 and np.abs(grads["pos_embed"]).max() > 0
  assert np.abs(trained["patch_embed"]["proj"]["kernel"]).max() > 0


def test_feature_options_and_their_sizes():
  x = images(32)
  variables = init(small_vit())
  out = {f: run(small_vit(features=f), variables, x) for f in vit_lib.FEATURES}
  assert {f: v.shape for f, v in out.items()} == {
      "cls": (2, 32), "mean_patch": (2, 32), "cls_last4": (2, 64), "cls_mean_patch": (2, 64)}
  # Two blocks: both normed class tokens, the last of them the default feature.
  np.testing.assert_allclose(out["cls_last4"][:, 32:], out["cls"], atol=1e-6)
  np.testing.assert_allclose(out["cls_mean_patch"], np.concatenate(
      [out["cls"], out["mean_patch"]], axis=1), atol=1e-6)
  for features, dim in (("cls", 384), ("cls_last4", 1536), ("cls_mean_patch", 768)):
    assert models.backbone_feature_dim(vit_config(arch="vit_small", features=features)) == dim


def test_bfloat16_keeps_float32_params_and_output_close_to_float32():
  x = images(32)
  variables = init(small_vit(dtype=jnp.bfloat16))
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
  out = run(small_vit(dtype=jnp.bfloat16), variables, x)
  assert out.dtype == jnp.float32
  reference = run(small_vit(), variables, x)
  np.testing.assert_allclose(out, reference, atol=0.1)
  assert not np.array_equal(out, reference)


def test_xavier_init_follows_moco_v3():
  params = init(small_vit(weight_init="xavier"))["params"]
  qkv = params["blocks_0"]["attn"]["qkv"]["kernel"]
  limit = np.sqrt(6 / (32 + 32))  # q, k and v each a [32, 32] matrix
  assert limit * 0.9 < np.abs(qkv).max() <= limit
  assert np.abs(params["cls_token"]).max() < 1e-5
  np.testing.assert_array_equal(params["patch_embed"]["proj"]["bias"], 0.0)


@pytest.mark.parametrize("overrides,field,accepted", [
    (dict(arch="vit_huge"), "config.model.arch", "vit_large"),
    (dict(patch_size=0), "config.model.patch_size", "16 or 8"),
    (dict(image_size=100), "config.model.image_size", "multiple of patch_size=16"),
    (dict(pos_embed="rope"), "config.model.pos_embed", "sincos"),
    (dict(drop_path_rate=1.0), "config.model.drop_path_rate", "[0, 1)"),
    (dict(features="cls_last2"), "config.model.features", "cls_last4"),
    (dict(num_heads=5), "config.model.num_heads", "divisor of the width 192"),
    (dict(weight_init="he"), "config.model.weight_init", "xavier"),
    (dict(depth=-1), "config.model.depth", "positive integer"),
])
def test_bad_vit_config_raises_naming_the_field(overrides, field, accepted):
  config = vit_config(**overrides)
  for check in (models.validate, models.create_backbone, models.backbone_feature_dim):
    with pytest.raises(ValueError, match=re.escape(field)) as error:
      check(config)
    assert accepted in str(error.value)
    assert repr(next(iter(overrides.values()))) in str(error.value)


def test_num_heads_and_depth_override_the_size_defaults():
  small = models.create_backbone(vit_config(arch="vit_small"))
  assert (small.num_heads, small.depth) == (6, 12)
  shallow = models.create_backbone(vit_config(arch="vit_small", num_heads=12, depth=2))
  assert (shallow.num_heads, shallow.depth) == (12, 2)
  assert models.backbone_feature_dim(vit_config(features="cls_last4", depth=2)) == 2 * 192
