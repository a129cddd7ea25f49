"""Inpainting: the loss reads the masked region alone and is the paper's L2 there; the
region and the view transform must agree."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_ssl import config as config_lib
from jax_ssl.data import transforms
from jax_ssl.methods import inpainting


@pytest.fixture(scope="module")
def masked():
  images = jax.random.uniform(jax.random.key(0), (4, 12, 12, 3))
  out = jax.vmap(transforms.parse("mask:0.25"))(images, jax.random.split(jax.random.key(1), 4))
  predicted = jax.random.uniform(jax.random.key(2), images.shape)
  return predicted, out["target"], out["mask"]


def test_the_loss_is_the_mean_squared_error_over_the_masked_pixels(masked):
  predicted, target, mask = (np.asarray(x, np.float64) for x in masked)
  inside = mask[..., 0] == 1
  expected = np.mean((predicted[inside] - target[inside]) ** 2)  # [pixels, 3], all averaged
  np.testing.assert_allclose(inpainting.masked_l2(*masked), expected, rtol=1e-5)


def test_nothing_outside_the_mask_counts(masked):
  predicted, target, mask = masked
  outside = 1 - mask
  moved = predicted + 10.0 * outside  # wrong everywhere outside the region
  np.testing.assert_allclose(inpainting.masked_l2(moved, target, mask),
                             inpainting.masked_l2(predicted, target, mask), rtol=1e-6)
  gradient = jax.grad(inpainting.masked_l2)(predicted, target, mask)
  assert np.all(np.asarray(gradient * outside) == 0)
  assert np.all(np.asarray(jnp.abs(gradient) * mask).sum((1, 2, 3)) > 0)
  assert float(inpainting.masked_l2(target, target, mask)) == 0.0


def test_the_region_and_the_view_transform_must_agree():
  c = config_lib.base_config("inpainting")
  config_lib.shrink_for_cpu(c)
  assert c.data.views.masked.transform == "center_mask:0.25"
  config_lib.validate(c, num_devices=1)
  c.inpainting.region = "random"
  with pytest.raises(ValueError, match="config.data.views.masked.transform='center_mask"):
    config_lib.validate(c, num_devices=1)
  c.data.views.masked.transform = "mask:0.25"
  config_lib.validate(c, num_devices=1)
  c.data.views.masked.transform = "mask:1.5"  # more than the view
  with pytest.raises(ValueError, match=r"config.data.views.masked.transform='mask:1.5'"):
    config_lib.validate(c, num_devices=1)
  c.data.views.masked.transform = "mask:0.25"
  c.inpainting.region = "edge"
  with pytest.raises(ValueError, match="config.inpainting.region='edge'"):
    config_lib.validate(c, num_devices=1)
