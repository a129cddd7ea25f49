"""Colorization: the ab bins, the soft-encoded targets and the class-rebalancing weights
against NumPy transcriptions of the paper's formulas; the encoder sees L of RGB images."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_ssl import config as config_lib, step as step_lib
from jax_ssl.data import transforms
from jax_ssl.methods import colorization


def random_ab(count, seed=0):
  """The ab of `count` random sRGB colours, in Lab units."""
  rgb = np.random.default_rng(seed).random((count, 3), np.float32)
  return np.asarray(transforms.rgb_to_lab(rgb))[:, 1:]


def test_the_bins_are_the_in_gamut_cells_of_a_10_wide_grid():
  bins = colorization.ab_bins()
  assert bins.shape == (262, 2)  # the paper's gamut has 313; see ab_bins
  np.testing.assert_array_equal(bins % 10, 0)
  assert len(np.unique(bins, axis=0)) == len(bins) and [0, 0] in bins.tolist()
  # Every colour's nearest grid centre is a bin, and no bin is far from the colours.
  nearest = np.round(random_ab(20_000) / 10) * 10
  assert {tuple(c) for c in nearest} <= {tuple(b) for b in bins}
  assert np.abs(bins[:, 0]).max() <= 100 and np.abs(bins[:, 1]).max() <= 110


def test_soft_encoding_puts_gaussian_weights_on_the_five_nearest_bins():
  ab = random_ab(64, seed=1)
  encoded, nearest = colorization.soft_encode(jnp.asarray(ab), neighbours=5, sigma=5.0)
  encoded = np.asarray(encoded)
  np.testing.assert_allclose(encoded.sum(-1), 1.0, rtol=1e-5)
  bins = colorization.ab_bins()
  distances = ((ab[:, None] - bins[None]) ** 2).sum(-1)
  expected = np.zeros_like(encoded)
  for row, d in zip(expected, distances):
    five = np.argsort(d)[:5]
    row[five] = np.exp(-d[five] / (2 * 5.0 ** 2)) / np.exp(-d[five] / (2 * 5.0 ** 2)).sum()
  np.testing.assert_allclose(encoded, expected, atol=1e-4)  # float32 distances
  np.testing.assert_array_equal(nearest, distances.argmin(-1))


def test_rebalancing_weights_have_expectation_one_and_favour_rare_colours():
  bins = colorization.ab_bins()
  prior = np.random.default_rng(2).dirichlet(np.full(len(bins), 0.3)).astype(np.float32)
  weights = np.asarray(colorization.rebalancing_weights(jnp.asarray(prior), 0.5, 5.0))
  # The paper: the prior smoothed by a Gaussian of sigma 5, mixed half with uniform.
  kernel = np.exp(-((bins[:, None] - bins[None]) ** 2).sum(-1) / (2 * 5.0 ** 2))
  smoothed = (kernel / kernel.sum(0)) @ prior
  np.testing.assert_allclose(smoothed.sum(), 1.0, rtol=1e-5)
  expected = 1 / (0.5 * smoothed + 0.5 / len(bins))
  np.testing.assert_allclose(weights, expected / (smoothed * expected).sum(), rtol=1e-4)
  np.testing.assert_allclose((smoothed * weights).sum(), 1.0, rtol=1e-5)
  assert weights[smoothed.argmax()] < 1 < weights[smoothed.argmin()]
  no_rebalancing = colorization.rebalancing_weights(jnp.asarray(prior), 1.0, 5.0)
  np.testing.assert_allclose(no_rebalancing, 1.0, rtol=1e-5)


def tiny_config(**section):
  c = config_lib.base_config("colorization")
  config_lib.shrink_for_cpu(c)
  c.data.image_size = 16
  c.colorization.update(section)
  return c


class Pooled(nn.Module):
  """A stand-in backbone: the mean of each channel."""

  def __call__(self, x, train):
    del train
    return x.mean((1, 2))


def test_the_encoder_takes_rgb_and_sees_its_lightness_as_training_does():
  images = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))
  features = colorization.LightnessEncoder(Pooled()).apply({}, images, train=False)
  lightness = transforms.lab(images, None)["image"]  # what the colour view holds
  np.testing.assert_allclose(features, lightness.mean((1, 2)), rtol=1e-6)
  c = tiny_config()
  spec = step_lib.example_batch(c)
  assert spec["colour"].shape == (2, 16, 16, 1) and spec["colour_ab"].shape == (2, 16, 16, 2)
  model = colorization.create_model(c)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(
      spec["colour"].shape), train=False))
  _, logits = jax.eval_shape(lambda v: model.apply(v, jnp.zeros(spec["colour"].shape),
                                                   train=False), variables)
  assert logits.shape == (2, 4, 4, 262)  # a quarter of the view's side, one logit a bin
  encoder = colorization.encoder(c)
  mapped = encoder.variables(variables["params"], variables["batch_stats"])
  assert mapped["params"]["backbone"] is variables["params"]["backbone"]
  assert not encoder.is_backbone  # exported with its conversion, not as a plain ResNet


@pytest.mark.parametrize("field, value", [("loss", "l1"), ("neighbours", 0),
                                          ("rebalance_lambda", 0.0), ("decoder_widths", (0,))])
def test_bad_fields_are_refused_by_name(field, value):
  c = tiny_config(**{field: value})
  with pytest.raises(ValueError, match=f"config.colorization.{field}="):
    config_lib.validate(c, num_devices=1)
