"""The PyTorch reference step computes what jax_ssl computes: head, loss, LARS, recipe
(its ResNet, jax_ssl.torch_resnet, is tested in test_torch_resnet.py)."""
import importlib.util
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import benchmark_scripts
from jax_ssl import config as config_lib, losses, methods, models, optim

torch = pytest.importorskip("torch")  # the test extra's CPU build

torch_reference = benchmark_scripts.load("torch_reference")
REPO = pathlib.Path(__file__).resolve().parent.parent


def simclr_r50_config():
  spec = importlib.util.spec_from_file_location("simclr_r50", REPO / "configs" / "simclr_r50.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def test_the_reference_uses_the_simclr_r50_recipe():
  c = simclr_r50_config()
  assert torch_reference.TEMPERATURE == c.simclr.temperature
  assert torch_reference.PROJ_DIM == c.simclr.proj_dim
  assert torch_reference.BASE_LR == c.optim.base_lr and c.optim.lr_scaling == "linear"
  assert torch_reference.BASE_BATCH_SIZE == c.optim.base_batch_size
  assert torch_reference.WEIGHT_DECAY == c.optim.weight_decay
  assert torch_reference.MOMENTUM == c.optim.momentum and not c.optim.nesterov
  assert torch_reference.TRUST_COEFFICIENT == c.optim.trust_coefficient
  assert c.optim.name == "lars" and tuple(c.simclr.proj_hidden_dims) == (2048, 2048)
  assert c.simclr.proj_last_bn


def test_projection_head_has_the_shapes_of_the_jax_head():
  """SimCLR v2's head at the benchmark's sizes: hidden widths = the encoder's features."""
  c = config_lib.base_config("simclr")
  c.model.update(arch="resnet18", width_multiplier=1 / 16, cifar_stem=True)
  feature_dim = models.backbone_feature_dim(c.model)
  c.simclr.proj_hidden_dims, c.simclr.proj_dim = (feature_dim, feature_dim), 128
  model = methods.get("simclr").create_model(c)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((2, 16, 16, 3)),
                                                train=False))
  expected = sorted(x.shape for x in jax.tree.leaves(variables["params"]["projector"]))

  torch_model, kind = torch_reference.simclr_model("resnet18", 1 / 16, cifar_stem=True)
  trainable = [p for p in torch_model.projector.parameters() if p.requires_grad]
  got = sorted(tuple(p.shape[::-1]) if p.ndim == 2 else tuple(p.shape) for p in trainable)
  assert kind == "plain" and got == expected
  z = torch_model.train()(torch.rand(4, 3, 16, 16))
  assert z.shape == (4, 128)


def test_nt_xent_equals_jax_ssl_losses():
  rng = np.random.default_rng(0)
  z_a, z_b = (rng.normal(size=(8, 16)).astype(np.float32) for _ in range(2))
  for temperature in (0.1, 0.5):
    expected = losses.nt_xent(jnp.asarray(z_a), jnp.asarray(z_b), temperature=temperature)
    got = torch_reference.nt_xent(torch.from_numpy(z_a), torch.from_numpy(z_b), temperature)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.item(), float(expected), rtol=1e-5, atol=1e-5)
  # Under bfloat16 autocast the similarities still come out in float32.
  with torch.autocast("cpu", dtype=torch.bfloat16):
    got = torch_reference.nt_xent(torch.from_numpy(z_a).bfloat16(), torch.from_numpy(z_b))
  assert got.dtype == torch.float32


def test_lars_steps_equal_optax_lars_as_jax_ssl_configures_it():
  """Two steps with learning rates 0.5 then 0.2: decay, trust ratio and momentum match."""
  rng = np.random.default_rng(0)
  params = {"conv": rng.normal(size=(4, 3, 3, 3)), "dense": rng.normal(size=(5, 4)),
            "bias": rng.normal(size=(5,)), "bn_scale": 1 + 0.1 * rng.normal(size=(4,)),
            "zero_kernel": np.zeros((3, 2))}  # |p| = 0: the trust ratio is 1
  params = {k: v.astype(np.float32) for k, v in params.items()}
  grads = [{k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
           for _ in range(2)]
  rates = (0.5, 0.2)

  c = config_lib.base_config().optim
  c.weight_decay = 0.01  # larger than the recipe's, so that its effect is visible
  tx = optim.make_optimizer(c, optax.piecewise_constant_schedule(rates[0], {1: rates[1] / rates[0]}))
  jax_params = jax.tree.map(jnp.asarray, params)
  state = tx.init(jax_params)
  for g in grads:
    updates, state = tx.update(jax.tree.map(jnp.asarray, g), state, jax_params)
    jax_params = optax.apply_updates(jax_params, updates)

  torch_params = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
  opt = torch_reference.LARS(list(torch_params.values()), lr=rates[0],
                             weight_decay=c.weight_decay, momentum=c.momentum,
                             trust_coefficient=c.trust_coefficient)
  for lr, g in zip(rates, grads):
    opt.param_groups[0]["lr"] = lr
    for k, p in torch_params.items():
      p.grad = torch.from_numpy(g[k])
    opt.step()

  for k, p in torch_params.items():
    np.testing.assert_allclose(p.detach().numpy(), np.asarray(jax_params[k]), rtol=0, atol=1e-6,
                               err_msg=k)
    assert not np.array_equal(p.detach().numpy(), params[k])


def test_warmup_cosine_has_the_shape_of_jax_ssls_schedule():
  schedule = optim.warmup_cosine(1.0, 10, 1000)
  for step in (0, 5, 10, 400, 999, 1000):
    assert torch_reference.warmup_cosine(step) == pytest.approx(float(schedule(step)), abs=1e-6)


def test_run_on_cpu_reports_throughput():
  args = torch_reference.parse_args(["--model", "resnet18", "--width", "0.0625",
                                     "--image_size", "16", "--batch", "8", "--dtype", "float32",
                                     "--steps", "2", "--warmup", "1", "--nocompile"])
  result = torch_reference.run(args)
  assert result["images_per_sec"] > 0 and math.isfinite(result["loss"])
  assert result["step_ms"] == pytest.approx(1000 * 8 / result["images_per_sec"])
  assert result["device"] == "cpu" and result["peak_memory_gb"] is None
  assert result["resnet"] == "plain" and result["compile"] is False
  assert (result["model"], result["image_size"], result["batch"], result["dtype"]) == (
      "resnet18", 16, 8, "float32")
  assert result["torch_version"] == torch.__version__
