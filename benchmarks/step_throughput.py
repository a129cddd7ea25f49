r"""Times the full training step on device-resident synthetic data.

  python benchmarks/step_throughput.py --method simclr --model resnet50 \
      --image_size 224 --batch 256 --dtype bfloat16

The step is the one train.py runs: forward of both views, the loss with its
cross-device gather, backward, LARS, and the method's state update. The last
line printed is one JSON object: images_per_sec, step_ms, mfu (the step's
matmul and convolution FLOPs, counted from its jaxpr, / step time / the
devices' bf16 peak), peak_memory_gb, device, jax_version. XLA's own cost
analysis is not used: on GPU it leaves out convolutions run by cuDNN.
"""
import argparse
import importlib.util
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jax_ssl import flops as flops_lib, methods, models, optim, parallel  # noqa: E402
from jax_ssl import step  # noqa: E402

# Dense bf16 peak FLOP/s of one device, by the start of jax's device_kind.
BF16_PEAK_FLOPS = {
    "NVIDIA H100": 989e12, "NVIDIA H200": 989e12, "NVIDIA A100": 312e12,
    "TPU v4": 275e12, "TPU v5 lite": 197e12, "TPU v5": 459e12, "TPU v6 lite": 918e12,
}


def peak_flops(device):
  return next((v for k, v in BF16_PEAK_FLOPS.items() if device.device_kind.startswith(k)), None)


def build_config(args):
  """The method's ImageNet recipe (configs/<method>_r50.py) at the benchmark's sizes."""
  recipe = {"simclr": "simclr_r50", "moco": "moco_v2_r50", "byol": "byol_r50",
            "swav": "swav_r50"}[args.method]
  spec = importlib.util.spec_from_file_location(recipe, os.path.join(REPO, "configs",
                                                                      recipe + ".py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config()
  c.model.arch = args.model
  c.model.width_multiplier = args.width
  c.model.cifar_stem = args.image_size <= 64
  c.model.dtype = args.dtype
  feature_dim = models.backbone_feature_dim(c.model)
  c.simclr.proj_hidden_dims = (feature_dim, feature_dim)
  c.data.image_size = args.image_size
  c.data.multicrop.local_size = max(8, args.image_size * 96 // 224)
  c.train.batch_size = args.batch
  c.moco.queue_size = max(c.moco.queue_size // args.batch, 1) * args.batch
  c.swav.queue_size = 0
  return c


def synthetic_batch(config, rng):
  """Random images in the layout of the config's augmentation recipe."""
  b, s = config.train.batch_size, config.data.image_size
  if config.data.augment.recipe == "multicrop":
    crops, local = config.data.multicrop, config.data.multicrop.local_size
    return {"global": rng.random((b, crops.num_global, s, s, 3), np.float32),
            "local": rng.random((b, crops.num_local, local, local, 3), np.float32)}
  return {v: rng.random((b, s, s, 3), np.float32) for v in ("view1", "view2")}


def run(args):
  config = build_config(args)
  mesh = parallel.make_mesh()
  method = methods.get(config.method)
  model = method.create_model(config)
  schedule = optim.warmup_cosine(optim.scaled_learning_rate(config.optim, args.batch), 10, 1000)
  run = methods.Run(model, config, mesh, steps_per_epoch=100, total_steps=1000)
  tx = method.adapt_optimizer(optim.make_optimizer(config.optim, schedule), run)
  state = step.create_state(run, method, tx)
  train_step = step.make_train_step(run, method, tx, schedule)

  batch = jax.device_put(synthetic_batch(config, np.random.default_rng(0)),
                         parallel.batch_sharding(mesh))

  flops = flops_lib.count_flops(train_step, state, batch)  # the whole global batch
  start = time.perf_counter()
  compiled = train_step.lower(state, batch).compile()
  compile_s = time.perf_counter() - start
  for _ in range(args.warmup):
    state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(args.steps):
    state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  step_s = (time.perf_counter() - start) / args.steps

  device = jax.devices()[0]
  peak = peak_flops(device)
  memory = device.memory_stats() or {}
  return {
      "method": args.method, "model": args.model, "image_size": args.image_size,
      "batch": args.batch, "dtype": args.dtype, "num_devices": jax.device_count(),
      "images_per_sec": args.batch / step_s, "step_ms": 1000 * step_s,
      "compile_s": compile_s, "tflops_per_step": flops / 1e12,
      "mfu": flops / step_s / (peak * jax.device_count()) if peak else None,
      "peak_memory_gb": memory.get("peak_bytes_in_use", 0) / 2**30 or None,
      "loss": float(metrics["loss"]), "device": device.device_kind,
      "jax_version": jax.__version__,
  }


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--method", default="simclr", choices=methods.METHODS)
  p.add_argument("--model", default="resnet50")
  p.add_argument("--width", type=float, default=1.0)
  p.add_argument("--image_size", type=int, default=224)
  p.add_argument("--batch", type=int, default=256, help="global batch")
  p.add_argument("--dtype", default="bfloat16", choices=tuple(models.DTYPES))
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--warmup", type=int, default=3)
  return p.parse_args(argv)


if __name__ == "__main__":
  print(json.dumps(run(parse_args())))
