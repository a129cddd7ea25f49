r"""An ImageNet-sized memory bank in the train state of 8 simulated devices, checkpointed.

  python benchmarks/bank_shapes.py --workdir=/tmp/bank_shapes

Builds NPID's train state (configs/npid_r50.py: 128-d features, a bank row for each of
ImageNet's 1,281,167 training images, padded to a multiple of the devices) on 8 CPU
devices, saves it with the project's checkpoint code (jax_ssl/checkpoint.py), restores it
into the state's own layout and prints the bank's global shape, each device's shard shape
and bytes, and the checkpoint's size on disk; the last line is one JSON object of the
same. The backbone is shrunk to a ResNet-10 at 1/8 width (--full_model keeps the
ResNet-50): the bank does not depend on it, and the ResNet-50's initialisation takes
minutes of a laptop's CPU.
"""
import argparse
import importlib.util
import json
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

from jax_ssl import checkpoint, parallel, step as step_lib  # noqa: E402

IMAGENET_TRAIN = 1_281_167


def npid_config(full_model):
  spec = importlib.util.spec_from_file_location("npid_r50", os.path.join(
      REPO, "configs", "npid_r50.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  if not full_model:
    config.model.update(arch="resnet10", width_multiplier=0.125)
  config.train.checkpoint_every_steps = 1
  return config


def folder_bytes(path):
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(path) for name in names)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="where the checkpoint is written")
  parser.add_argument("--examples", type=int, default=IMAGENET_TRAIN)
  parser.add_argument("--full_model", action="store_true", help="keep the ResNet-50")
  args = parser.parse_args(argv)
  config = npid_config(args.full_model)
  mesh = parallel.make_mesh()
  method, run, tx, _ = step_lib.make_run(config, mesh, steps_per_epoch=1, total_steps=1,
                                         warmup_steps=0, num_train=args.examples)
  state = step_lib.create_state(run, method, tx)
  manager = checkpoint.make_manager(args.workdir, config.train)
  checkpoint.save(manager, 0, state)
  manager.wait_until_finished()
  restored = checkpoint.restore_latest(manager, checkpoint.abstract_like(state))
  bank = restored["method_state"]["bank"]
  shards = sorted({tuple(s.data.shape) for s in bank.addressable_shards})
  rows_per_device = bank.shape[0] // mesh.size
  same = bool(np.array_equal(np.asarray(bank), np.asarray(state["method_state"]["bank"])))
  result = {
      "examples": args.examples, "devices": mesh.size, "bank_shape": list(bank.shape),
      "bank_dtype": str(bank.dtype), "shard_shapes": [list(s) for s in shards],
      "bank_spec": str(bank.sharding.spec),
      "device_bytes": rows_per_device * bank.shape[1] * bank.dtype.itemsize,
      "checkpoint_bytes": folder_bytes(os.path.join(args.workdir, "checkpoints")),
      "restored_equal": same, "backbone": config.model.arch}
  print(f"bank of {args.examples:,} examples on {mesh.size} devices: global "
        f"{tuple(bank.shape)} {bank.dtype}, sharded {result['bank_spec']}")
  for shard in bank.addressable_shards:
    print(f"  {shard.device}: rows {shard.index[0].start:,}-{shard.index[0].stop - 1:,} "
          f"shape {tuple(shard.data.shape)}")
  print(f"{result['device_bytes'] / 2**20:.1f} MiB of bank per device; checkpoint "
        f"{result['checkpoint_bytes'] / 2**20:.1f} MiB on disk; restored equal: {same}")
  print(json.dumps(result))
  return result


if __name__ == "__main__":
  main()
