r"""Times the full training step on device-resident synthetic data.

  python benchmarks/step_throughput.py --method simclr --model resnet50 \
      --image_size 224 --batch 256 --dtype bfloat16
  python benchmarks/step_throughput.py --method dino --recipe dino_vit_small --local_crops 10
  python benchmarks/step_throughput.py --method mae --recipe mae_vit_base

A method's recipe is configs/<method>_r50.py unless --recipe names another; a ViT recipe
keeps its own ViT unless --model names one, and its local crops' size is scaled with the
image to a multiple of the patch. bfloat16 is the activations' type: the weights, the
optimizer, softmax and the loss stay in float32.

The step is the one train.py runs: forward of both views, the loss with its
cross-device gather, backward, LARS, and the method's state update. The last
line printed is one JSON object: images_per_sec, step_ms, mfu (the step's
matmul and convolution FLOPs, counted from its jaxpr, / step time / the
devices' bf16 peak), peak_memory_gb, device, jax_version. XLA's own cost
analysis is not used: on GPU it leaves out convolutions run by cuDNN.

  --torch   (SimCLR only) then times the same step in PyTorch, benchmarks/torch_reference.py,
            with the same model, width, image size, batch, dtype, steps and warm-up, in this
            process, and adds torch_images_per_sec and ratio_vs_torch (JAX images/s over
            torch images/s). On GPU, XLA then allocates memory as it needs it rather than
            taking 75% up front (XLA_PYTHON_CLIENT_PREALLOCATE=false unless set), and
            releases its buffers, caches and client before torch starts. torch is imported
            only with this flag.
  --record  appends the result, with the date, versions and command, to
            benchmarks/results.jsonl (--results_file).
"""
import argparse
import datetime
import gc
import importlib.metadata
import importlib.util
import json
import os
import shlex
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jax_ssl import flops as flops_lib, methods, models, parallel  # noqa: E402
from jax_ssl import step  # noqa: E402

# Dense bf16 peak FLOP/s of one device, by the start of jax's device_kind.
BF16_PEAK_FLOPS = {
    "NVIDIA H100": 989e12, "NVIDIA H200": 989e12, "NVIDIA A100": 312e12,
    "TPU v4": 275e12, "TPU v5 lite": 197e12, "TPU v5": 459e12, "TPU v6 lite": 918e12,
}


def peak_flops(device):
  return next((v for k, v in BF16_PEAK_FLOPS.items() if device.device_kind.startswith(k)), None)


def recipe_name(args):
  """--recipe, else configs/<method>_r50.py, else <method>_vit_base.py (MAE's)."""
  if args.recipe:
    return args.recipe
  for recipe in (f"{args.method}_r50", f"{args.method}_vit_base"):
    if os.path.exists(os.path.join(REPO, "configs", recipe + ".py")):
      return recipe
  raise ValueError(f"--method {args.method} has no configs/{args.method}_r50.py or "
                   f"_vit_base.py: name its recipe with --recipe")


def build_config(args):
  """The method's ImageNet recipe at the benchmark's sizes."""
  recipe, _, variant = recipe_name(args).partition(":")  # dino_vit_small:tiny shrinks its head
  spec = importlib.util.spec_from_file_location(recipe, os.path.join(REPO, "configs",
                                                                      recipe + ".py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config(variant or None)
  if args.model or not models.is_vit(c.model):
    c.model.arch = args.model or "resnet50"
  if models.is_vit(c.model):
    c.model.image_size = args.image_size
    c.model.depth = args.depth
  else:
    c.model.width_multiplier = args.width
    c.model.cifar_stem = args.image_size <= 64
  c.model.dtype = args.dtype
  feature_dim = models.backbone_feature_dim(c.model)
  if args.method == "simclr":
    c.simclr.proj_hidden_dims = (feature_dim, feature_dim)
  c.data.image_size = args.image_size
  if args.local_crops is not None:
    c.data.views.local.count = args.local_crops
  # Local crops (96 pixels at 224) scale with the image; a ViT's tile into its patches.
  multiple = c.model.patch_size if models.is_vit(c.model) else 1
  for view in c.data.views.values():
    if view.size is not None:
      size = args.image_size * view.size // 224
      view.size = max(8, size - size % multiple, multiple)
  c.train.batch_size = args.batch
  if args.method == "moco_v2":
    c.moco_v2.queue_size = max(c.moco_v2.queue_size // args.batch, 1) * args.batch
  if args.method == "swav":
    c.swav.queue_size = 0
  return c


def synthetic_batch(config, rng):
  """Random views in the layout of the config's view groups, and example indices."""
  b = config.train.batch_size
  spec = step.example_batch(config, b)
  return {name: (rng.random(s.shape).astype(s.dtype) if name != "index"
                 else np.arange(b, dtype=np.int32)) for name, s in spec.items()
          if name != "label"}


def run(args):
  """The JAX step's figures; with args.torch, the PyTorch reference's beside them."""
  if args.torch:
    # Read when the first JAX operation starts the GPU client; no effect on CPU.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  result = measure_jax(args)
  if args.torch:
    result.update(compare_with_torch(args, result))
  return result


def measure_jax(args):
  """Times the JAX step; returns Python values only, so no device buffer outlives it."""
  if args.torch and jax.default_backend() != "cpu" and jax.device_count() > 1:
    raise ValueError(f"--torch compares one device with one device, but JAX sees "
                     f"{jax.device_count()}: run with CUDA_VISIBLE_DEVICES=0")
  config = build_config(args)
  mesh = parallel.make_mesh()
  method, run, tx, schedule = step.make_run(config, mesh, steps_per_epoch=100, total_steps=1000,
                                            warmup_steps=10)
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
      "method": args.method, "recipe": recipe_name(args), "model": config.model.arch,
      "width": args.width if not models.is_vit(config.model) else None,
      "image_size": args.image_size,
      "batch": args.batch, "dtype": args.dtype, "num_devices": jax.device_count(),
      "images_per_sec": args.batch / step_s, "step_ms": 1000 * step_s,
      "compile_s": compile_s, "tflops_per_step": flops / 1e12,
      "mfu": flops / step_s / (peak * jax.device_count()) if peak else None,
      "peak_memory_gb": memory.get("peak_bytes_in_use", 0) / 2**30 or None,
      "loss": float(metrics["loss"]), "device": device.device_kind,
      "jax_version": jax.__version__, "platform_version": device.client.platform_version,
  }


def release_jax_memory():
  """Frees what JAX holds on the accelerator, so that torch can have it.

  Call it once no JAX array is referenced any more. On GPU the client itself goes:
  XLA's allocator keeps freed memory in its pool until then. On CPU nothing is
  pooled, and the client stays (other code in the process may still use it).
  """
  gc.collect()
  jax.clear_caches()
  if jax.default_backend() != "cpu":
    from jax.extend import backend  # noqa: PLC0415
    backend.clear_backends()
  gc.collect()


def compare_with_torch(args, jax_result):
  """Runs benchmarks/torch_reference.py with this benchmark's settings."""
  release_jax_memory()
  here = os.path.dirname(os.path.abspath(__file__))
  if here not in sys.path:
    sys.path.insert(0, here)
  import torch_reference  # noqa: PLC0415  (imports torch: only with --torch)

  reference = torch_reference.run(torch_reference.parse_args([
      "--model", args.model or "resnet50", "--width", str(args.width),
      "--image_size", str(args.image_size), "--batch", str(args.batch), "--dtype", args.dtype,
      "--steps", str(args.steps), "--warmup", str(args.warmup)]))
  return {
      "torch_images_per_sec": reference["images_per_sec"],
      "torch_step_ms": reference["step_ms"],
      "torch_peak_memory_gb": reference["peak_memory_gb"],
      "torch_device": reference["device"], "torch_version": reference["torch_version"],
      "torch_compile": reference["compile"], "torch_resnet": reference["resnet"],
      "ratio_vs_torch": jax_result["images_per_sec"] / reference["images_per_sec"],
  }


# Decimal places kept in results.jsonl, as in its earlier records.
RECORD_DIGITS = {"images_per_sec": 1, "step_ms": 2, "compile_s": 1, "peak_memory_gb": 2,
                 "mfu": 4, "loss": 4, "torch_images_per_sec": 1, "torch_step_ms": 2,
                 "torch_peak_memory_gb": 2, "ratio_vs_torch": 3}


def versions(result):
  """'jax X, jaxlib X, flax X, optax X[, torch X][, <platform>]', for a record."""
  names = ["jax", "jaxlib", "flax", "optax"] + (["torch"] if "torch_version" in result else [])
  found = []
  for name in names:
    try:
      found.append(f"{name} {importlib.metadata.version(name)}")
    except importlib.metadata.PackageNotFoundError:
      pass
  if result.get("platform_version") not in (None, "", "cpu", "<unknown>"):
    found.append(result["platform_version"])
  return ", ".join(found)


def record(result, argv, path, note=""):
  """Appends `result` to the JSON-lines file `path`; returns the line's object."""
  entry = {k: round(v, RECORD_DIGITS[k]) if k in RECORD_DIGITS and v is not None else v
           for k, v in result.items()}
  entry.update(date=datetime.date.today().isoformat(), versions=versions(result),
               command=shlex.join(["python", "benchmarks/step_throughput.py", *argv]))
  if note:
    entry["note"] = note
  with open(path, "a") as f:
    f.write(json.dumps(entry) + "\n")
  return entry


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--method", default="simclr", choices=methods.names())
  p.add_argument("--recipe", default="",
                 help="configs/RECIPE.py, or RECIPE:tiny for its CPU variant (default: "
                      "<method>_r50, or mae_vit_base)")
  p.add_argument("--model", default="",
                 help="config.model.arch (default: resnet50, or a ViT recipe's own)")
  p.add_argument("--width", type=float, default=1.0, help="ResNets' width multiplier")
  p.add_argument("--depth", type=int, default=0, help="ViT blocks (0: the size's)")
  p.add_argument("--local_crops", type=int, default=None,
                 help="multi-crop's local crops (default: the recipe's)")
  p.add_argument("--image_size", type=int, default=224)
  p.add_argument("--batch", type=int, default=256, help="global batch")
  p.add_argument("--dtype", default="bfloat16", choices=tuple(models.DTYPES))
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--warmup", type=int, default=3)
  p.add_argument("--torch", action="store_true",
                 help="also time benchmarks/torch_reference.py (SimCLR only)")
  p.add_argument("--record", action="store_true", help="append the result to --results_file")
  p.add_argument("--results_file", default=os.path.join(REPO, "benchmarks", "results.jsonl"))
  p.add_argument("--note", default="", help="a remark stored with a --record")
  args = p.parse_args(argv)
  if args.torch and args.method != "simclr":
    p.error(f"--torch compares SimCLR only (benchmarks/torch_reference.py); "
            f"got --method {args.method}")
  return args


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  args = parse_args(argv)
  result = run(args)
  if args.record:
    record(result, argv, args.results_file, args.note)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
