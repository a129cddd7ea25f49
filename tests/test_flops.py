"""The jaxpr FLOP counter against hand-counted layers."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest
from jax.sharding import PartitionSpec as P

from jax_ssl import flops, models, parallel


def test_dense_forward_and_backward():
  layer = nn.Dense(7, use_bias=False)
  x = jnp.ones((5, 3))
  params = layer.init(jax.random.key(0), x)
  assert flops.count_flops(layer.apply, params, x) == 2 * 5 * 3 * 7
  # Backward: one product for the input gradient, one for the weight gradient.
  loss = lambda p, x: layer.apply(p, x).sum()
  assert flops.count_flops(jax.grad(loss, argnums=(0, 1)), params, x) == 3 * 2 * 5 * 3 * 7


def test_convolution_with_stride_and_groups():
  conv = nn.Conv(8, (3, 3), strides=2, padding=1, feature_group_count=2, use_bias=False)
  x = jnp.ones((2, 10, 10, 4))
  params = conv.init(jax.random.key(0), x)
  out_elements = 2 * 5 * 5 * 8
  assert flops.count_flops(conv.apply, params, x) == 2 * out_elements * 3 * 3 * (4 // 2)


def test_resnet50_forward_is_about_4_1_gmacs():
  model = models.resnet(50)
  x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)),
                                                train=False))
  gflops = flops.count_flops(lambda v, x: model.apply(v, x, train=False), variables, x) / 1e9
  assert gflops == pytest.approx(2 * 4.09, rel=0.02)  # torchvision: 4.09 GMACs without fc


def test_strided_conv_backward_counts_twice_the_forward():
  conv = nn.Conv(8, (3, 3), strides=2, padding=1, use_bias=False)
  x = jnp.ones((2, 16, 16, 4))
  params = conv.init(jax.random.key(0), x)
  forward = flops.count_flops(conv.apply, params, x)
  loss = lambda p, x: conv.apply(p, x).sum()
  backward_and_forward = flops.count_flops(jax.grad(loss, argnums=(0, 1)), params, x)
  assert backward_and_forward == 3 * forward


def test_shard_map_counts_every_device():
  mesh = parallel.make_mesh()
  f = jax.shard_map(lambda a, b: a @ b, mesh=mesh, in_specs=(P("data"), P()), out_specs=P("data"))
  a, b = jnp.ones((16, 4)), jnp.ones((4, 3))
  assert flops.count_flops(f, a, b) == 2 * 16 * 4 * 3
