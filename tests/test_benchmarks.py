"""The throughput benchmark runs on CPU with a tiny model and reports sane figures."""
import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import pytest

from jax_ssl import flops, models

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "step_throughput.py"


def load_benchmark():
  spec = importlib.util.spec_from_file_location("step_throughput", SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_step_throughput_on_cpu():
  bench = load_benchmark()
  args = bench.parse_args(["--model", "resnet10", "--width", "0.125", "--image_size", "16",
                           "--batch", "16", "--dtype", "float32", "--steps", "2", "--warmup", "1"])
  result = bench.run(args)
  assert result["images_per_sec"] > 0
  assert result["step_ms"] == pytest.approx(1000 * 16 / result["images_per_sec"])
  assert result["device"] == "cpu" and result["mfu"] is None and result["num_devices"] == 8
  # Training costs about 3x the backbone's forward pass over both views; the
  # first conv needs no input gradient and the head adds a little.
  backbone = models.resnet(10, width_multiplier=0.125, cifar_stem=True)
  x = jnp.zeros((32, 16, 16, 3))
  variables = backbone.init(jax.random.key(0), x, train=False)
  forward = flops.count_flops(lambda v, x: backbone.apply(v, x, train=False), variables, x)
  assert 2.7 * forward < result["tflops_per_step"] * 1e12 < 3.1 * forward


def test_step_throughput_runs_a_multicrop_method():
  bench = load_benchmark()
  args = bench.parse_args(["--method", "swav", "--model", "resnet10", "--width", "0.125",
                           "--image_size", "16", "--batch", "16", "--dtype", "float32",
                           "--steps", "1", "--warmup", "1"])
  result = bench.run(args)
  assert result["images_per_sec"] > 0 and result["tflops_per_step"] > 0
