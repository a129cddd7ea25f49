"""Pretrains an image encoder without labels, or evaluates one (config.task).

  python main.py --config=configs/simclr_tiny.py --workdir=/tmp/simclr_tiny
  python main.py --config=configs/simclr_r50.py --workdir=gs://bucket/run \
      --config.train.batch_size=1024
  python main.py --config=configs/linear_eval.py --config.pretrained=/tmp/simclr_tiny \
      --workdir=/tmp/simclr_tiny_linear

Any config field can be overridden with --config.<field>=<value>. On Cloud TPU, SLURM,
Open MPI and Kubernetes the processes of a run find each other by themselves; elsewhere
start one process per host with --coordinator_address, --num_processes and --process_id.
Libraries' INFO logs (orbax, absl, JAX) are off; --verbosity=0 shows them, 1 adds DEBUG.
A mistake in the command or the config stops the run with one line on stderr, exit code 2.
"""
import os
import time

STARTED = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jax_ssl import cli  # noqa: E402

config_flags.DEFINE_config_file(
    "config", None, "An ml_collections config file, e.g. configs/simclr_tiny.py.",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Where the run writes checkpoints and metrics.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for multi-process runs.")
flags.DEFINE_integer("num_processes", None, "How many processes the run has.")
flags.DEFINE_integer("process_id", None, "This process's index, 0 to num_processes - 1.")
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def hide_accelerators_from_tensorflow():
  """tf.data runs on the host; TF must not take accelerator memory from JAX."""
  with cli.native_stderr_silenced(logging.get_verbosity() < logging.INFO):
    import tensorflow as tf  # noqa: PLC0415
  tf.config.set_visible_devices([], "GPU")


def main(argv):
  del argv  # parse_flags accepts flags only
  hide_accelerators_from_tensorflow()
  import jax  # noqa: PLC0415  (imported after TF is confined)
  from jax_ssl import parallel  # noqa: PLC0415
  parallel.start_processes(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  if jax.process_index() != 0:  # process 0 alone logs and writes metrics
    logging.set_verbosity(logging.WARNING)
  from jax_ssl import metrics, supervised, train  # noqa: PLC0415
  config, workdir = FLAGS.config, FLAGS.workdir
  task = config.get("task", "pretrain")
  metrics.print_line(f"{task} with {FLAGS['config'].config_filename} in {workdir}")
  run = train.train_and_evaluate if task == "pretrain" else supervised.run
  try:
    results = run(config, workdir)
  except cli.DELIBERATE as error:
    if cli.raised_on_purpose(error):
      cli.fail(error)
    raise
  metrics.print_summary(results, workdir, time.perf_counter() - STARTED,
                        exported=task == "pretrain" and "stopped_at_step" not in results)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
