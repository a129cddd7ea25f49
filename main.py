"""Pretrains an image encoder without labels, or evaluates one (config.task).

  python main.py --config=configs/simclr_tiny.py --workdir=/tmp/simclr_tiny
  python main.py --config=configs/simclr_r50.py --workdir=gs://bucket/run \
      --config.train.batch_size=1024
  python main.py --config=configs/linear_eval.py --config.pretrained=/tmp/simclr_tiny \
      --workdir=/tmp/simclr_tiny_linear

Any config field can be overridden with --config.<field>=<value>. On Cloud TPU, SLURM,
Open MPI and Kubernetes the processes of a run find each other by themselves; elsewhere
start one process per host with --coordinator_address, --num_processes and --process_id.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

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
  import tensorflow as tf  # noqa: PLC0415
  tf.config.set_visible_devices([], "GPU")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  hide_accelerators_from_tensorflow()
  import jax  # noqa: PLC0415  (imported after TF is confined)
  from jax_ssl import parallel  # noqa: PLC0415
  parallel.start_processes(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  if jax.process_index() != 0:  # process 0 alone logs and writes metrics
    logging.set_verbosity(logging.WARNING)
  from jax_ssl import supervised, train  # noqa: PLC0415
  logging.info("config:\n%s", FLAGS.config)
  task = FLAGS.config.get("task", "pretrain")
  run = train.train_and_evaluate if task == "pretrain" else supervised.run
  run(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main)
