"""Tests for jax_ssl.models: ResNet backbones, the MLP head and config-driven construction.

Big models are only traced (`jax.eval_shape`); real forwards use width 0.25 and tiny images.
"""
import functools
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jax_ssl import models
from jax_ssl.models import MLPHead, ResNet, backbone_feature_dim, create_backbone, validate
from jax_ssl.models.resnet import STAGE_SIZES, feature_dim, resnet

# torchvision resnetN().parameters() minus the fc layer (512*1000+1000 or 2048*1000+1000):
# 11,689,512 / 21,797,672 / 25,557,032 / 44,549,160 / 60,192,808 in total.
TORCHVISION_PARAMS_WITHOUT_FC = {
  18: 11_176_512,
  34: 21_284_672,
  50: 23_508_032,
  101: 42_500_160,
  152: 58_143_808,
}
BN_MOMENTUM = 0.9
BN_EPS = 1e-5
# These tiny programs spend most of their time in LLVM, not running: skip its costly passes.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


# ---------------------------------------------------------------- helpers


def count(tree):
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def abstract_variables(model, image_size=32, batch=1):
  x = jax.ShapeDtypeStruct((batch, image_size, image_size, 3), jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


def is_kernel(path):
  return jax.tree_util.keystr(path).endswith("['kernel']")


@functools.lru_cache(maxsize=None)
def compiled_forward(model, train, capture):
  mutable = ["batch_stats"] * train + ["intermediates"] * capture
  apply = functools.partial(model.apply, train=train, capture_intermediates=capture, mutable=mutable)
  return jax.jit(apply, compiler_options=FAST_COMPILE)


def forward(model, variables, x, train, capture=False):
  """(output, updated collections) from one jitted program per (model, mode).

  On CPU one compile of a tiny ResNet is about 3x cheaper than eager op-by-op dispatch.
  """
  return compiled_forward(model, train, capture)(variables, x)


def random_variables(model, x, seed=0):
  """Variables with the model's structure, filled by NumPy; avoids compiling the RNG of `init`.

  BN scales, biases and running stats are deliberately far from their initial 1/0/0/1 so
  that a misplaced or skipped BN changes the result.
  """
  abstract = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = jax.tree_util.keystr(path)
    if is_kernel(path):
      fan_in = np.prod(leaf.shape[:-1])
      value = rng.normal(size=leaf.shape) * np.sqrt(2.0 / fan_in)
    elif name.endswith("['scale']"):
      value = 1.0 + 0.3 * rng.normal(size=leaf.shape)
    elif name.endswith("['var']"):
      value = rng.uniform(0.5, 1.5, size=leaf.shape)
    else:  # bias, mean
      value = 0.3 * rng.normal(size=leaf.shape)
    return jnp.asarray(value, jnp.float32)

  return jax.tree_util.tree_map_with_path(fill, abstract)


def images(shape, seed=0):
  return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def reference_param_count(depth, width=1.0, cifar_stem=False):
  """Conv weights + BN scale/bias of a torchvision-style ResNet, counted from the paper's table."""
  bottleneck = depth >= 50
  expansion = 4 if bottleneck else 1
  stem = int(64 * width)
  total = (3 if cifar_stem else 7) ** 2 * 3 * stem + 2 * stem
  in_ch = stem
  for stage, blocks in enumerate(STAGE_SIZES[depth]):
    planes = int(64 * 2**stage * width)
    out = planes * expansion
    for block in range(blocks):
      if bottleneck:
        total += in_ch * planes + 9 * planes * planes + planes * out + 2 * (2 * planes + out)
      else:
        total += 9 * in_ch * planes + 9 * planes * planes + 2 * 2 * planes
      if block == 0 and (stage > 0 or in_ch != out):
        total += in_ch * out + 2 * out
      in_ch = out
  return total


def numpy_conv(x, kernel, stride, pad):
  """Direct NHWC convolution with PyTorch's symmetric zero padding."""
  x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  k = kernel.shape[0]
  out_h = (x.shape[1] - k) // stride + 1
  out_w = (x.shape[2] - k) // stride + 1
  out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[-1]))
  for i in range(out_h):
    for j in range(out_w):
      patch = x[:, i * stride : i * stride + k, j * stride : j * stride + k, :]
      out[:, i, j] = np.einsum("nhwc,hwcd->nd", patch, kernel)
  return out


def numpy_max_pool_3x3_s2(x):
  x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
  out_h, out_w = (x.shape[1] - 3) // 2 + 1, (x.shape[2] - 3) // 2 + 1
  out = np.empty((x.shape[0], out_h, out_w, x.shape[3]))
  for i in range(out_h):
    for j in range(out_w):
      out[:, i, j] = x[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].max(axis=(1, 2))
  return out


def numpy_batch_norm(x, scale, bias, mean, var):
  return (x - mean) / np.sqrt(var + BN_EPS) * scale + bias


def block_names(stage_sizes):
  return [f"layer{s + 1}_{b}" for s, n in enumerate(stage_sizes) for b in range(n)]


def model_config(**overrides):
  fields = dict(arch="resnet18", width_multiplier=0.25, cifar_stem=True, zero_init_last_bn=False)
  # Built in one go: ConfigDict would refuse a later change of a field's type.
  return ml_collections.ConfigDict({**fields, "dtype": "float32", **overrides})


# ---------------------------------------------------------------- architecture


@pytest.mark.parametrize("depth", sorted(TORCHVISION_PARAMS_WITHOUT_FC))
def test_param_count_equals_torchvision_without_fc(depth):
  params = abstract_variables(resnet(depth))["params"]
  assert count(params) == TORCHVISION_PARAMS_WITHOUT_FC[depth]
  assert reference_param_count(depth) == TORCHVISION_PARAMS_WITHOUT_FC[depth]


@pytest.mark.parametrize(
  "depth,width,cifar_stem", [(10, 0.25, True), (34, 0.5, True), (50, 2.0, False), (200, 1.0, False)]
)
def test_param_count_follows_architecture_for_other_widths_and_stems(depth, width, cifar_stem):
  variables = abstract_variables(resnet(depth, width_multiplier=width, cifar_stem=cifar_stem))
  assert count(variables["params"]) == reference_param_count(depth, width, cifar_stem)
  # Every BN keeps a float32 mean and var per channel, as many as its scale+bias.
  assert count(variables["batch_stats"]) == sum(
    leaf.size for path, leaf in jax.tree_util.tree_leaves_with_path(variables["params"])
    if "bn" in jax.tree_util.keystr(path)
  )


def test_names_and_shapes_mirror_torchvision():
  r50 = abstract_variables(resnet(50))["params"]
  assert r50["conv1"]["kernel"].shape == (7, 7, 3, 64)
  assert set(r50["layer1_0"]) == {
    "conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "downsample_conv", "downsample_bn"
  }
  assert "downsample_conv" not in r50["layer1_1"]
  assert r50["layer1_0"]["downsample_conv"]["kernel"].shape == (1, 1, 64, 256)
  assert r50["layer3_5"]["conv2"]["kernel"].shape == (3, 3, 256, 256)
  assert r50["layer4_2"]["conv3"]["kernel"].shape == (1, 1, 512, 2048)
  assert "layer3_6" not in r50 and "fc" not in r50

  r18 = abstract_variables(resnet(18))["params"]
  assert set(r18["layer1_0"]) == {"conv1", "bn1", "conv2", "bn2"}
  assert r18["layer2_0"]["downsample_conv"]["kernel"].shape == (1, 1, 64, 128)
  # Convs have no bias; BN has scale and bias.
  for path, _ in jax.tree_util.tree_leaves_with_path(r18):
    name = jax.tree_util.keystr(path)
    assert ("conv" in name) == name.endswith("['kernel']"), name


@pytest.mark.parametrize(
  "depth,width,cifar_stem,size",
  [
    (10, 0.25, True, 32),
    (18, 1.0, False, 224),
    (34, 0.5, True, 32),
    (50, 0.25, True, 32),
    (50, 1.0, False, 224),
    (18, 2.0, False, 160),
    (101, 0.5, False, 8),
  ],
)
def test_features_shape_and_dim(depth, width, cifar_stem, size):
  model = resnet(depth, width_multiplier=width, cifar_stem=cifar_stem)
  x = jax.ShapeDtypeStruct((3, size, size, 3), jnp.float32)
  out = jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x, train=False)[0], x)
  assert out.shape == (3, feature_dim(depth, width))
  assert out.dtype == jnp.float32


def test_feature_dim_values():
  assert feature_dim(10) == feature_dim(18) == feature_dim(34) == 512
  assert feature_dim(50) == feature_dim(200) == 2048
  assert feature_dim(50, 0.25) == 512
  assert feature_dim(18, 2.0) == 1024
  assert feature_dim(101, 0.5) == 1024


@pytest.mark.parametrize(
  "cifar_stem,size,stage_res", [(False, 224, (56, 28, 14, 7)), (True, 32, (32, 16, 8, 4))]
)
def test_stride_sits_on_the_3x3_conv_of_the_bottleneck(cifar_stem, size, stage_res):
  """ResNet v1.5: in layer2_0..layer4_0 conv1 (1x1) keeps the resolution, conv2 (3x3) halves it."""
  model = resnet(50, cifar_stem=cifar_stem)
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  _, state = jax.eval_shape(
    lambda x: model.init_with_output(jax.random.key(0), x, train=False, capture_intermediates=True), x
  )
  acts = state["intermediates"]
  for stage, res in enumerate(stage_res):
    block = acts[f"layer{stage + 1}_0"]
    input_res = res if stage == 0 else stage_res[stage - 1]
    assert block["conv1"]["__call__"][0].shape[1:3] == (input_res, input_res)
    assert block["conv2"]["__call__"][0].shape[1:3] == (res, res)
    assert block["__call__"][0].shape[1:3] == (res, res)


def test_imagenet_stem_pads_like_pytorch():
  """conv 7x7/2 pad 3, BN, ReLU, max-pool 3x3/2 pad 1, then a 3x3 pad-1 conv, checked in NumPy.

  On even sizes such as 224, strided 'SAME' padding puts the extra row after, unlike PyTorch.
  """
  model = resnet(10, width_multiplier=0.25)
  x = images((2, 12, 12, 3))
  variables = random_variables(model, x)
  _, state = forward(model, variables, x, train=False, capture=True)
  acts = state["intermediates"]
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"])
  s = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["batch_stats"])
  conv1 = numpy_conv(np.asarray(x, np.float64), p["conv1"]["kernel"], stride=2, pad=3)
  np.testing.assert_allclose(acts["conv1"]["__call__"][0], conv1, rtol=1e-4, atol=1e-4)
  bn1 = numpy_batch_norm(conv1, p["bn1"]["scale"], p["bn1"]["bias"], s["bn1"]["mean"], s["bn1"]["var"])
  stem = numpy_max_pool_3x3_s2(np.maximum(bn1, 0.0))
  block_conv1 = numpy_conv(stem, p["layer1_0"]["conv1"]["kernel"], stride=1, pad=1)
  np.testing.assert_allclose(acts["layer1_0"]["conv1"]["__call__"][0], block_conv1, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- zero-init of the last BN


TINY_BASIC = dict(stage_sizes=(1, 1, 1, 1), bottleneck=False, width_multiplier=0.25, cifar_stem=True)
TINY_BOTTLENECK = dict(stage_sizes=(2, 1, 1, 1), bottleneck=True, width_multiplier=0.25, cifar_stem=True)
TINY = {"basic": (TINY_BASIC, "bn2"), "bottleneck": (TINY_BOTTLENECK, "bn3")}
# One batch shape for the tiny models' forwards, so that each program compiles once.
BN_TEST_BATCH = (8, 8, 8, 3)


@functools.lru_cache(maxsize=None)
def initial_bn_params(kind):
  """BN scales and biases from a real `init`, kernels dropped (None).

  Dropping the kernels lets XLA skip compiling their RNG, the slowest thing in this file.
  """
  model = ResNet(zero_init_last_bn=True, **TINY[kind][0])

  def bn_params(key, x):
    params = model.init(key, x, train=False)["params"]
    return jax.tree_util.tree_map_with_path(lambda path, a: None if is_kernel(path) else a, params)

  return jax.jit(bn_params, compiler_options=FAST_COMPILE)(jax.random.key(0), images((1, 8, 8, 3)))


@pytest.mark.parametrize("kind", sorted(TINY))
def test_zero_init_last_bn_zeroes_exactly_the_last_scale_of_each_block(kind):
  kwargs, last_bn = TINY[kind]
  params = initial_bn_params(kind)
  for name in block_names(kwargs["stage_sizes"]):
    np.testing.assert_array_equal(params[name][last_bn]["scale"], 0.0)
  zeroed = 0
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    name = jax.tree_util.keystr(path)
    if name.endswith("['scale']"):
      is_last = f"['{last_bn}']" in name
      zeroed += is_last
      np.testing.assert_array_equal(leaf, 0.0 if is_last else 1.0, err_msg=name)
    else:
      assert name.endswith("['bias']"), name
      np.testing.assert_array_equal(leaf, 0.0, err_msg=name)
  assert zeroed == len(block_names(kwargs["stage_sizes"]))


def test_conv_kernels_use_untruncated_he_fan_out_init():
  """torchvision: kaiming_normal_(mode='fan_out'), std sqrt(2 / (k * k * out_channels))."""
  model = resnet(10, width_multiplier=0.5)

  def some_kernels(key, x):
    params = model.init(key, x, train=False)["params"]["layer4_0"]
    return params["conv1"]["kernel"], params["downsample_conv"]["kernel"]

  kernels = jax.jit(some_kernels, compiler_options=FAST_COMPILE)(jax.random.key(0), images((1, 8, 8, 3)))
  for kernel in kernels:
    k, _, _, out = kernel.shape  # conv1: 3x3, 128 -> 256; fan-in and fan-out differ 2x
    std = np.sqrt(2.0 / (k * k * out))
    assert abs(np.std(kernel) / std - 1) < 0.03
    assert abs(np.mean(kernel)) < 0.03 * std
    assert np.max(np.abs(kernel)) > 3 * std  # a normal, not truncated at 2 std


@pytest.mark.parametrize("kind,train", [("basic", False), ("bottleneck", True)])
def test_zero_init_makes_every_block_relu_of_its_shortcut(kind, train):
  kwargs, _ = TINY[kind]
  # The flag only changes `init`; without it the forward program is shared with other tests.
  model = ResNet(**kwargs)
  x = images(BN_TEST_BATCH)
  # Random kernels and running stats, BN parameters as `init` makes them with the flag.
  variables = random_variables(model, x)
  variables["params"] = jax.tree_util.tree_map_with_path(
    lambda path, random, initial: random if is_kernel(path) else initial,
    variables["params"], initial_bn_params(kind), is_leaf=lambda a: a is None,
  )
  _, state = forward(model, variables, x, train=train, capture=True)
  acts = state["intermediates"]
  block_input = np.maximum(acts["bn1"]["__call__"][0], 0.0)  # CIFAR stem: no pooling
  for name in block_names(kwargs["stage_sizes"]):
    block = acts[name]
    if "downsample_bn" in block:
      shortcut = block["downsample_bn"]["__call__"][0]
    else:
      shortcut = block_input
    output = block["__call__"][0]
    np.testing.assert_allclose(output, np.maximum(shortcut, 0.0), rtol=1e-6, atol=1e-6, err_msg=name)
    block_input = output


def test_without_zero_init_the_residual_branch_contributes():
  model = ResNet(**TINY_BASIC)
  x = images(BN_TEST_BATCH)
  _, state = forward(model, random_variables(model, x), x, train=False, capture=True)
  acts = state["intermediates"]
  block_input = np.maximum(acts["bn1"]["__call__"][0], 0.0)
  assert not np.allclose(acts["layer1_0"]["__call__"][0], block_input, atol=1e-3)


# ---------------------------------------------------------------- batch norm modes


def test_train_mode_updates_batch_stats_with_momentum():
  model = resnet(10, width_multiplier=0.25, cifar_stem=True)
  x = images(BN_TEST_BATCH)
  variables = random_variables(model, x)
  _, state = forward(model, variables, x, train=True, capture=True)
  old, new = variables["batch_stats"], state["batch_stats"]
  conv1 = np.asarray(state["intermediates"]["conv1"]["__call__"][0], np.float64)
  batch_mean, batch_var = conv1.mean(axis=(0, 1, 2)), conv1.var(axis=(0, 1, 2))  # biased var
  expected_mean = BN_MOMENTUM * old["bn1"]["mean"] + (1 - BN_MOMENTUM) * batch_mean
  expected_var = BN_MOMENTUM * old["bn1"]["var"] + (1 - BN_MOMENTUM) * batch_var
  np.testing.assert_allclose(new["bn1"]["mean"], expected_mean, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(new["bn1"]["var"], expected_var, rtol=1e-4, atol=1e-6)
  changed = jax.tree.map(lambda a, b: not np.allclose(a, b), old, new)
  assert jax.tree.structure(new) == jax.tree.structure(old)
  assert all(jax.tree.leaves(changed))


def test_eval_mode_is_deterministic_and_uses_running_stats():
  model = resnet(10, width_multiplier=0.25, cifar_stem=True)
  x = images(BN_TEST_BATCH)
  variables = random_variables(model, x)
  first, _ = forward(model, variables, x, train=False, capture=True)
  np.testing.assert_array_equal(first, forward(model, variables, x, train=False, capture=True)[0])
  # A sample's features do not depend on the rest of the batch (no batch statistics) ...
  others_replaced = x.at[1:].set(images(x[1:].shape, seed=1))
  alone, _ = forward(model, variables, others_replaced, train=False, capture=True)
  np.testing.assert_allclose(alone[0], first[0], rtol=1e-5)
  train_out, state = forward(model, variables, x, train=True, capture=True)
  train_replaced, _ = forward(model, variables, others_replaced, train=True, capture=True)
  assert not np.allclose(train_replaced[0], train_out[0], atol=1e-3)
  # ... and they follow the running stats.
  moved, _ = forward(model, {**variables, "batch_stats": state["batch_stats"]}, x, train=False, capture=True)
  assert not np.allclose(moved, first, atol=1e-3)


def test_batch_sharded_over_8_devices_gets_global_batch_statistics():
  """Under jit, BN over a batch sharded on 'data' equals BN over the whole batch (synced BN)."""
  model = resnet(10, width_multiplier=0.25, cifar_stem=True)
  x = images(BN_TEST_BATCH)
  variables = random_variables(model, x)
  mesh = jax.make_mesh((8,), ("data",))
  sharded_x = jax.device_put(x, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data")))
  sharded_out, sharded_state = forward(model, variables, sharded_x, train=True, capture=True)
  assert len(sharded_x.sharding.device_set) == 8
  out, state = forward(model, variables, x, train=True, capture=True)
  np.testing.assert_allclose(sharded_out, out, rtol=1e-4, atol=1e-5)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
    sharded_state["batch_stats"], state["batch_stats"],
  )


# ---------------------------------------------------------------- bfloat16


def test_bfloat16_keeps_float32_params_and_output_and_tracks_float32():
  x = images(BN_TEST_BATCH)  # the float32 programs are then already compiled by the BN tests
  model_bf16 = resnet(10, width_multiplier=0.25, cifar_stem=True, dtype=jnp.bfloat16)
  model_f32 = resnet(10, width_multiplier=0.25, cifar_stem=True)
  abstract = jax.eval_shape(lambda x: model_bf16.init(jax.random.key(0), x, train=False), x)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(abstract))

  variables = random_variables(model_f32, x)
  out_bf16, state = forward(model_bf16, variables, x, train=True, capture=True)
  out_f32, _ = forward(model_f32, variables, x, train=True, capture=True)
  assert out_bf16.dtype == jnp.float32
  # The activations really are bfloat16, the batch statistics float32.
  assert state["intermediates"]["layer3_0"]["conv2"]["__call__"][0].dtype == jnp.bfloat16
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state["batch_stats"]))

  # bf16 keeps 8 significant bits (relative rounding up to 2^-9 = 0.2%). With running stats
  # the features stay within 2% in relative L2 norm (measured 0.7% here, 0.8% for ResNet-50).
  eval_bf16, _ = forward(model_bf16, variables, x, train=False)
  eval_f32, _ = forward(model_f32, variables, x, train=False, capture=True)
  assert eval_bf16.dtype == jnp.float32
  assert 0 < relative_error(eval_bf16, eval_f32) < 2e-2
  # Train-mode BN on a small batch with random weights amplifies any perturbation (in float32,
  # 0.2% input noise moves a random ResNet-50's features by 8% at this size), so the bound is
  # looser and size-specific: 5% (measured 1.5-1.7% for this ResNet-10 over three seeds).
  assert 0 < relative_error(out_bf16, out_f32) < 5e-2


def relative_error(actual, expected):
  return np.linalg.norm(actual - expected) / np.linalg.norm(expected)


# ---------------------------------------------------------------- MLP head


def head_shapes(head, in_dim=5):
  variables = jax.eval_shape(lambda: head.init(jax.random.key(0), jnp.ones((4, in_dim)), train=False))
  return jax.tree.map(lambda a: a.shape, variables)


def test_head_layers_follow_simclr_v2():
  shapes = head_shapes(MLPHead(hidden_dims=(7, 6), output_dim=3))
  assert shapes["params"] == {
    "dense_0": {"kernel": (5, 7)},
    "bn_0": {"scale": (7,), "bias": (7,)},
    "dense_1": {"kernel": (7, 6)},
    "bn_1": {"scale": (6,), "bias": (6,)},
    "dense_out": {"kernel": (6, 3)},
    "bn_out": {"scale": (3,)},  # no centering on the output BN
  }
  assert set(shapes["batch_stats"]) == {"bn_0", "bn_1", "bn_out"}

  no_last_bn = head_shapes(MLPHead(hidden_dims=(7,), output_dim=3, last_bn=False))["params"]
  assert no_last_bn["dense_out"] == {"kernel": (7, 3), "bias": (3,)}
  assert set(no_last_bn) == {"dense_0", "bn_0", "dense_out"}

  plain = head_shapes(MLPHead(hidden_dims=(7, 6), output_dim=3, use_bn=False))
  assert "batch_stats" not in plain
  assert plain["params"] == {
    "dense_0": {"kernel": (5, 7), "bias": (7,)},
    "dense_1": {"kernel": (7, 6), "bias": (6,)},
    "dense_out": {"kernel": (6, 3), "bias": (3,)},
  }


def as_float64(tree):
  return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def numpy_head(x, p, hidden_stats, out_stats):
  """Dense -> BN -> ReLU -> Dense -> BN (scale only), SimCLR v2's 2-layer head.

  Returns the output and the two pre-BN activations.
  """
  h = x @ p["dense_0"]["kernel"]
  mean, var = hidden_stats(h)
  hidden = np.maximum(numpy_batch_norm(h, p["bn_0"]["scale"], p["bn_0"]["bias"], mean, var), 0.0)
  z = hidden @ p["dense_out"]["kernel"]
  mean, var = out_stats(z)
  return numpy_batch_norm(z, p["bn_out"]["scale"], 0.0, mean, var), h, z


def batch_moments(a):
  return a.mean(0), a.var(0)


def test_head_forward_matches_numpy_in_train_mode():
  head = MLPHead(hidden_dims=(6,), output_dim=4)
  x = jax.random.normal(jax.random.key(3), (8, 5))
  variables = random_variables(head, x)
  out, state = forward(head, variables, x, train=True)

  expected, h, z = numpy_head(
    np.asarray(x, np.float64), as_float64(variables["params"]), batch_moments, batch_moments
  )
  assert out.dtype == jnp.float32
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
  old, new = as_float64(variables["batch_stats"]), state["batch_stats"]
  expected_mean = BN_MOMENTUM * old["bn_0"]["mean"] + (1 - BN_MOMENTUM) * h.mean(0)
  expected_var = BN_MOMENTUM * old["bn_out"]["var"] + (1 - BN_MOMENTUM) * z.var(0)
  np.testing.assert_allclose(new["bn_0"]["mean"], expected_mean, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(new["bn_out"]["var"], expected_var, rtol=1e-4, atol=1e-6)


def test_head_eval_mode_uses_running_stats():
  head = MLPHead(hidden_dims=(6,), output_dim=4)
  x = jax.random.normal(jax.random.key(4), (3, 5))
  variables = random_variables(head, x)
  s = as_float64(variables["batch_stats"])
  expected, _, _ = numpy_head(
    np.asarray(x, np.float64), as_float64(variables["params"]),
    lambda _: (s["bn_0"]["mean"], s["bn_0"]["var"]), lambda _: (s["bn_out"]["mean"], s["bn_out"]["var"]),
  )
  np.testing.assert_allclose(forward(head, variables, x, train=False)[0], expected, rtol=1e-4, atol=1e-5)


def test_plain_head_is_dense_relu_dense_with_biases():
  head = MLPHead(hidden_dims=(6,), output_dim=4, use_bn=False)
  x = jax.random.normal(jax.random.key(4), (3, 5))
  variables = random_variables(head, x)
  q = as_float64(variables["params"])
  h = np.maximum(np.asarray(x, np.float64) @ q["dense_0"]["kernel"] + q["dense_0"]["bias"], 0)
  expected = h @ q["dense_out"]["kernel"] + q["dense_out"]["bias"]
  np.testing.assert_allclose(forward(head, variables, x, train=True)[0], expected, rtol=1e-4, atol=1e-5)


def test_head_bfloat16_output_is_float32_with_float32_params():
  head = MLPHead(hidden_dims=(16,), output_dim=8, dtype=jnp.bfloat16)
  x = jax.random.normal(jax.random.key(5), (8, 12))
  abstract = jax.eval_shape(lambda x: head.init(jax.random.key(0), x, train=False), x)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(abstract))
  variables = random_variables(head, x)
  out, _ = forward(head, variables, x, train=True)
  ref, _ = forward(MLPHead(hidden_dims=(16,), output_dim=8), variables, x, train=True)
  assert out.dtype == jnp.float32
  # Outputs are batch-normalised, so O(1); bf16 rounding (<0.4% per op) stays under 0.05.
  np.testing.assert_allclose(out, ref, rtol=0, atol=5e-2)
  assert not np.array_equal(out, ref)


# ---------------------------------------------------------------- config and errors


def test_create_backbone_from_config():
  config = model_config(
    arch="resnet50", width_multiplier=0.5, cifar_stem=False, zero_init_last_bn=True, dtype="bfloat16"
  )
  validate(config)
  backbone = create_backbone(config)
  assert isinstance(backbone, ResNet)
  assert backbone.stage_sizes == STAGE_SIZES[50] and backbone.bottleneck
  assert (backbone.width_multiplier, backbone.cifar_stem, backbone.zero_init_last_bn) == (0.5, False, True)
  assert backbone.dtype == jnp.bfloat16
  assert backbone_feature_dim(config) == 1024
  out = jax.eval_shape(
    lambda x: backbone.init_with_output(jax.random.key(0), x, train=False)[0],
    jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32),
  )
  assert out.shape == (2, 1024) and out.dtype == jnp.float32
  assert set(models.__all__) >= {"ResNet", "MLPHead", "create_backbone", "backbone_feature_dim", "validate"}


@pytest.mark.parametrize("depth", [0, 20, 42, 1000])
def test_bad_depth_names_depth_and_accepted_values(depth):
  for build in (resnet, feature_dim):
    with pytest.raises(ValueError, match=rf"depth {depth}\b.*\[10, 18, 34, 50, 101, 152, 200\]"):
      build(depth)


@pytest.mark.parametrize(
  "overrides,field,accepted",
  [
    (dict(arch="resnet42"), "config.model.arch", "resnet50"),
    (dict(arch="vit_b16"), "config.model.arch", "resnet200"),
    (dict(dtype="float16"), "config.model.dtype", "bfloat16"),
    (dict(dtype="bf16"), "config.model.dtype", "float32"),
    (dict(width_multiplier=0.01), "config.model.width_multiplier", "0.25"),
    (dict(width_multiplier=-1.0), "config.model.width_multiplier", "0.25"),
    (dict(cifar_stem="yes"), "config.model.cifar_stem", "True or False"),
    (dict(zero_init_last_bn=1), "config.model.zero_init_last_bn", "True or False"),
  ],
)
def test_bad_config_raises_naming_the_field(overrides, field, accepted):
  config = model_config(**overrides)
  for check in (validate, create_backbone, backbone_feature_dim):
    with pytest.raises(ValueError, match=re.escape(field)) as error:
      check(config)
    assert accepted in str(error.value)
    assert repr(next(iter(overrides.values()))) in str(error.value)


def test_missing_config_field_is_named():
  config = model_config()
  del config["cifar_stem"]
  with pytest.raises(ValueError, match=re.escape("config.model.cifar_stem")):
    validate(config)
