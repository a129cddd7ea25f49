r"""Views per second that the input pipeline delivers to the devices.

  python benchmarks/input_pipeline.py --image_size 224 --path host --seconds 30

The pipeline is the one train.py runs, by default on the SimCLR recipe of the image size
(32: configs/simclr_cifar10.py, no blur; 224: configs/simclr_r50.py, blur p=0.5); --config
takes another config's recipe (swav_r50: 2 global crops and 6 local ones at 96 px, all
counted as views):

  host    tf.data does everything: crop, flip, colour jitter, grayscale, blur. Small
          in-memory images (32 px) are batched and made into views by XLA in one loop;
          JPEGs are decoded, cropped and flipped one by one, then coloured a batch at a
          time by XLA.
  device  tf.data decodes each image once (a JPEG only in the window its crops need),
          crops, resizes and flips; the batch goes to the devices as uint8 and the colour
          ops run there (data/device.py), timed separately as device_augment_ms per batch.
  baseline  the recipe written straightforwardly from tf.image's ops (straightforward.py),
          the yardstick for the host path: SimCLR views only, the same data and delivery.

Data, generated once into --data_dir from scikit-learn's two sample photographs: at 32 px,
in-memory uint8 arrays (like CIFAR); at 224 px, a folder of JPEGs of ImageNet's
typical size (500 x 375, quality 90). views_per_sec counts the views of batches
that reached the devices, after --warmup_batches. The last line printed is one
JSON object; --record appends it to benchmarks/results.jsonl.
"""
import argparse
import datetime
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
import tensorflow as tf  # noqa: E402

from jax_ssl import parallel  # noqa: E402
from jax_ssl.data import device as device_lib, pipeline, sources  # noqa: E402

import straightforward  # noqa: E402  (benchmarks/, on the path as the script's folder)

RECIPES = {32: "simclr_cifar10", 224: "simclr_r50"}
JPEG_SIZE = (375, 500)


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--image_size", type=int, choices=sorted(RECIPES), default=224)
  parser.add_argument("--config", default="",
                      help="a configs/ name whose data recipe to run (default: SimCLR's)")
  parser.add_argument("--path", choices=("host", "device", "baseline"), default="host")
  parser.add_argument("--seconds", type=float, default=20.0)
  parser.add_argument("--batch", type=int, default=256, help="images per batch (2 views each)")
  parser.add_argument("--num_images", type=int, default=0,
                      help="dataset size; default 10,000 at 32 px, 1,000 at 224 px")
  parser.add_argument("--warmup_batches", type=int, default=3)
  parser.add_argument("--data_dir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                         "jax_ssl_input_benchmark"))
  parser.add_argument("--record", action="store_true")
  parser.add_argument("--results_file", default=os.path.join(REPO, "benchmarks",
                                                             "results.jsonl"))
  return parser.parse_args(argv)


def recipe_data_config(image_size, config_name=""):
  spec = importlib.util.spec_from_file_location("recipe", os.path.join(
      REPO, "configs", (config_name or RECIPES[image_size]) + ".py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  data = module.get_config().data
  data.image_size = image_size
  return data


def photo_crops(count, shape, seed=0):
  """`count` uint8 images of `shape` (h, w): random crops of the two photographs that
  scikit-learn ships, resized, so pixels are natural and JPEGs compress as photos do."""
  from sklearn.datasets import load_sample_images  # noqa: PLC0415

  photos = load_sample_images().images
  rng = np.random.default_rng(seed)
  out = np.empty((count, *shape, 3), np.uint8)
  for i in range(count):
    photo = photos[i % len(photos)]
    h, w = photo.shape[:2]
    side = rng.uniform(0.4, 1.0)
    ch, cw = int(h * side), int(w * side)
    top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = tf.image.resize(photo[top:top + ch, left:left + cw], shape, antialias=True)
    out[i] = np.clip(np.round(crop.numpy()), 0, 255).astype(np.uint8)
  return out


def array_source(num_images):
  images = photo_crops(num_images, (32, 32))
  labels = np.zeros(num_images, np.int32)
  indices = np.arange(num_images, dtype=np.int32)

  def read(split, process_index, process_count):
    return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels,
                                               "index": indices})

  return sources.Source("benchmark:arrays", 1, num_images, num_images, read,
                        split_arrays=lambda split: (images, labels))


def jpeg_folder_source(data_dir, num_images):
  root = os.path.join(data_dir, f"jpeg_{num_images}")
  if not os.path.isdir(os.path.join(root, "test")):
    for split in ("train", "test"):
      os.makedirs(os.path.join(root, split, "photos"), exist_ok=True)
    for i, image in enumerate(photo_crops(num_images, JPEG_SIZE)):
      with open(os.path.join(root, "train", "photos", f"{i:06d}.jpg"), "wb") as f:
        f.write(tf.io.encode_jpeg(image, quality=90).numpy())
    with open(os.path.join(root, "test", "photos", "000000.jpg"), "wb") as f:
      f.write(tf.io.encode_jpeg(photo_crops(1, JPEG_SIZE)[0], quality=90).numpy())
  config = recipe_data_config(224)
  config.source = f"folder:{root}"
  return sources.make_source(config)


def run(args):
  data_config = recipe_data_config(args.image_size, args.config)
  groups = sorted(data_config.views.keys())
  if args.path == "baseline" and groups != ["view1", "view2"]:
    raise ValueError(f"--path baseline makes SimCLR views only (two views, 'view1' and "
                     f"'view2'); {args.config} makes the view groups {groups}")
  num_images = args.num_images or (10_000 if args.image_size == 32 else 1_000)
  source = (array_source(num_images) if args.image_size == 32
            else jpeg_folder_source(args.data_dir, num_images))
  mesh = parallel.make_mesh()
  batch_size = args.batch - args.batch % mesh.size
  if args.path == "baseline":
    batches = straightforward.pretrain_dataset(data_config, source, batch_size).as_numpy_iterator()
  else:
    batches = pipeline.pretrain_batches(data_config, source, local_batch_size=batch_size, seed=0,
                                        colour_on_host=args.path == "host")
  views_per_batch = batch_size * sum(group.count for group in pipeline.view_groups(data_config))

  for _ in range(args.warmup_batches):
    last = parallel.global_batch(next(batches), mesh)
  jax.block_until_ready(last)
  delivered, start = 0, time.perf_counter()
  while time.perf_counter() - start < args.seconds:
    last = parallel.global_batch(next(batches), mesh)
    delivered += 1
  jax.block_until_ready(last)
  elapsed = time.perf_counter() - start

  result = {"views_per_sec": round(delivered * views_per_batch / elapsed, 1),
            "image_size": args.image_size, "path": args.path, "host_cores": os.cpu_count(),
            "batch": batch_size, "batches": delivered, "seconds": round(elapsed, 2),
            "recipe": args.config or RECIPES[args.image_size],
            "device": jax.devices()[0].device_kind, "num_devices": mesh.size}
  if args.path == "device":
    result["device_augment_ms"] = time_device_augment(data_config, mesh, last, batch_size)
  return result


def time_device_augment(data_config, mesh, batch, batch_size, repeats=5):
  """Milliseconds per batch for the colour ops on the devices, after compilation."""
  prepare = jax.jit(device_lib.make_prepare(data_config, mesh, seed=0, path="device",
                                            global_batch_size=batch_size))
  jax.block_until_ready(prepare(batch, 0))
  start = time.perf_counter()
  for step in range(repeats):
    out = prepare(batch, step)
  jax.block_until_ready(out)
  return round(1000 * (time.perf_counter() - start) / repeats, 2)


def record(result, args, path):
  versions = ", ".join(f"{name} {importlib.metadata.version(name)}"
                       for name in ("jax", "tensorflow-cpu", "tensorflow-datasets"))
  entry = {"benchmark": "input_pipeline", **result,
           "date": datetime.date.today().isoformat(), "versions": versions,
           "command": "python benchmarks/input_pipeline.py " + shlex.join(sys.argv[1:])}
  with open(path, "a") as f:
    f.write(json.dumps(entry) + "\n")


def main():
  args = parse_args()
  tf.config.set_visible_devices([], "GPU")
  result = run(args)
  if args.record:
    record(result, args, args.results_file)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
