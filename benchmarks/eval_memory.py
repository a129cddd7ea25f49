r"""Peak resident memory per process of an evaluation on a sharded feature bank.

  python benchmarks/eval_memory.py --rows 50000,200000,800000 --dim 512 --processes 2 --devices 4

For each bank size it starts --processes local processes of one run (JAX's multi-controller
runtime, gloo collectives), each with --devices CPU devices. Each process makes its share of
a synthetic labelled bank (--rows x --dim float32 features: --classes class centres plus
noise) straight on its devices, and a --queries-row test split, then runs what an
evaluation runs on them (jax_ssl.evaluate): the kNN accuracies for k = 20 and 200, the fast
linear probe (--epochs), and the diagnostics (effective rank of the bank, uniformity of the
first 2,048 test rows, alignment). Each process reports its peak resident set
(getrusage's ru_maxrss) once started (imports, devices, collectives), its resident set once
it holds its share of the bank, and its peak resident set at the end.

Features stay sharded, so a process's peak should grow by its share of the bank,
rows x dim x 4 bytes / processes, and a constant. --gathered instead only gathers the
whole bank to every process, 8,192 rows at a time, as feature extraction did before
(multihost_utils.process_allgather of each batch): the least that evaluating on the hosts
held, for comparison (it needs several times the bank: with 800,000 rows its processes were
killed for memory on a 23 GB machine). The last line printed is one JSON object per bank
size; --record appends one line per process and size to benchmarks/results.jsonl.
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import shlex
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--rows", default="50000,200000,800000",
                      help="comma-separated bank sizes, one run each")
  parser.add_argument("--dim", type=int, default=512)
  parser.add_argument("--classes", type=int, default=100)
  parser.add_argument("--queries", type=int, default=1000, help="test split rows")
  parser.add_argument("--epochs", type=int, default=1, help="linear probe epochs")
  parser.add_argument("--processes", type=int, default=2)
  parser.add_argument("--devices", type=int, default=4, help="CPU devices per process")
  parser.add_argument("--gathered", action="store_true",
                      help="gather the whole bank to every process, as before")
  parser.add_argument("--record", action="store_true")
  parser.add_argument("--results_file", default=os.path.join(REPO, "benchmarks",
                                                             "results.jsonl"))
  parser.add_argument("--worker", default="", help=argparse.SUPPRESS)  # port,process_id,rows
  return parser.parse_args(argv)


def peak_rss_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mb():
  """The resident set now (Linux's /proc/self/status), or None elsewhere."""
  try:
    with open("/proc/self/status") as f:
      return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))
  except OSError:
    return None


def synthetic_split(key, rows, dim, classes, mesh, spread=3.0, block=250):
  """Features of `rows` examples (class centres from `key`, the same for every split, plus
  noise), each device making its own rows `block` at a time: no more memory than the
  result."""
  import jax  # noqa: PLC0415  (workers only: the launcher never starts JAX)
  import jax.numpy as jnp  # noqa: PLC0415
  from jax.sharding import PartitionSpec as P  # noqa: PLC0415
  from jax_ssl import evaluate, parallel  # noqa: PLC0415

  blocks = -(-rows // (mesh.size * block))  # per device
  local = blocks * block

  def make(key):
    centres = jax.random.normal(jax.random.fold_in(key, 0), (classes, dim))
    me = jax.lax.axis_index(parallel.DATA_AXIS)
    position = me * local + jnp.arange(local, dtype=jnp.int32)

    def fill(i, x):
      noise = jax.random.normal(jax.random.fold_in(key, rows + me * blocks + i), (block, dim))
      labels = jax.lax.dynamic_slice_in_dim(position, i * block, block) % classes
      return jax.lax.dynamic_update_slice_in_dim(x, centres[labels] + spread * noise,
                                                 i * block, 0)

    x = jax.lax.fori_loop(0, blocks, fill, jnp.zeros((local, dim)))
    return x, position % classes, jnp.where(position < rows, position, -1), position < rows

  rows_spec = P(parallel.DATA_AXIS)
  made = jax.jit(jax.shard_map(make, mesh=mesh, in_specs=P(), out_specs=(rows_spec,) * 4,
                               check_vma=False))(key)
  return evaluate.Features(*made)


def worker(args):
  port, process_id, rows = (int(v) for v in args.worker.split(","))
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415
  from jax.experimental import multihost_utils  # noqa: PLC0415
  from jax_ssl import diagnostics, evaluate, parallel  # noqa: PLC0415

  parallel.start_processes(f"127.0.0.1:{port}", args.processes, process_id)
  mesh = parallel.make_mesh()
  multihost_utils.sync_global_devices("started")
  started_mb = peak_rss_mb()
  start = time.perf_counter()
  bank = synthetic_split(jax.random.key(0), rows, args.dim, args.classes, mesh)
  test = synthetic_split(jax.random.key(0), args.queries, args.dim, args.classes, mesh)
  jax.block_until_ready((bank.x, test.x))
  result = {"process": process_id, "rows": rows, "with_bank_rss_mb": round(rss_mb(), 1)}
  if args.gathered:  # as extract_features did: every batch to every process, kept on the host
    whole = np.empty(bank.x.shape, np.float32)
    step = min(8 * 1024, len(whole))
    rows_at = jax.jit(lambda x, start: jax.lax.dynamic_slice_in_dim(x, start, step))
    for first in range(0, len(whole), step):
      first = min(first, len(whole) - step)
      whole[first:first + step] = multihost_utils.process_allgather(
          rows_at(bank.x, first), tiled=True)
    result["gathered_rows"] = len(whole)
  else:
    knn = evaluate.knn_accuracies(bank, test, args.classes, ks=(20, 200))
    linear = evaluate.linear_probe_accuracies(bank, test, args.classes, epochs=args.epochs)
    first, _, found = evaluate.at_positions(test, np.arange(min(2048, args.queries)))
    result.update(
        knn_top1_k20=knn[20], knn_top1_k200=knn[200], linear_top1=linear[1],
        effective_rank=diagnostics.effective_rank(bank.x, bank.mask),
        uniformity=diagnostics.uniformity(first, found),
        alignment=diagnostics.alignment(test.x, test.x + 0.1))
  multihost_utils.sync_global_devices("done")
  result.update(started_peak_rss_mb=round(started_mb, 1), peak_rss_mb=round(peak_rss_mb(), 1),
                seconds=round(time.perf_counter() - start, 1))
  print(json.dumps(result), flush=True)


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run(args, rows):
  """Starts the processes of one run on a bank of `rows`; returns each process's result."""
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={args.devices}"}
  port = free_port()
  argv = [a for a in sys.argv[1:] if not a.startswith("--record")]
  workers = [subprocess.Popen([sys.executable, os.path.abspath(__file__), *argv,
                               f"--worker={port},{i},{rows}"], env=env, stdout=subprocess.PIPE,
                              text=True) for i in range(args.processes)]
  results = []
  for i, w in enumerate(workers):
    stdout, _ = w.communicate()
    if w.returncode:
      raise RuntimeError(f"process {i} of the {rows}-row run failed (exit {w.returncode})")
    results.append(json.loads(stdout.strip().splitlines()[-1]))
  return results


def record(results, args, path):
  versions = ", ".join(f"{name} {importlib.metadata.version(name)}"
                       for name in ("jax", "flax", "optax"))
  with open(path, "a") as f:
    for result in results:
      entry = {"benchmark": "eval_memory", **result, "dim": args.dim, "classes": args.classes,
               "queries": args.queries, "probe_epochs": args.epochs,
               "processes": args.processes, "devices_per_process": args.devices,
               "mode": "gathered" if args.gathered else "sharded",
               "bank_mb_per_process": round(result["rows"] * args.dim * 4 / 2**20
                                            / (1 if args.gathered else args.processes), 1),
               "host_cores": os.cpu_count(), "machine": platform.processor() or platform.machine(),
               "date": datetime.date.today().isoformat(), "versions": versions,
               "command": "python benchmarks/eval_memory.py " + shlex.join(sys.argv[1:])}
      f.write(json.dumps(entry) + "\n")


def main(argv=None):
  args = parse_args(argv)
  if args.worker:
    worker(args)
    return
  for rows in (int(r) for r in args.rows.split(",")):
    results = run(args, rows)
    if args.record:
      record(results, args, args.results_file)
    print(json.dumps({"rows": rows, "dim": args.dim, "processes": results}), flush=True)


if __name__ == "__main__":
  main()
