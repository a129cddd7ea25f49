"""The processes of a run, the device mesh, shardings, and global batches built from
per-process data."""
import jax
import numpy as np
from absl import flags, logging
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def define_process_flags():
  """--coordinator_address, --num_processes and --process_id, for `start_processes`."""
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for multi-process "
                      "runs.")
  flags.DEFINE_integer("num_processes", None, "How many processes the run has.")
  flags.DEFINE_integer("process_id", None, "This process's index, 0 to num_processes - 1.")


def start_processes(coordinator_address=None, num_processes=None, process_id=None):
  """Joins the run's other processes (JAX's multi-controller runtime), if it has any.

  Given none of the three, JAX looks for Cloud TPU, SLURM, Open MPI or Kubernetes, and
  without any the run is one process.
  """
  given = (coordinator_address, num_processes, process_id)
  if any(value is not None for value in given):
    jax.distributed.initialize(*given)
    return
  try:
    jax.distributed.initialize()
  except ValueError:  # no cluster, and no flags: a single process
    logging.info("no cluster detected; running as a single process")


def make_mesh(devices=None):
  """A 1-D mesh whose 'data' axis spans every device of every process."""
  devices = jax.devices() if devices is None else devices
  return jax.make_mesh((len(devices),), (DATA_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,), devices=devices)


def batch_sharding(mesh):
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh):
  return NamedSharding(mesh, P())


def global_batch(local_batch, mesh):
  """Assembles each process's numpy batch into global arrays sharded over 'data'."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)


def local_batch_size(global_batch_size):
  return global_batch_size // jax.process_count()


def process_sum(value):
  """The sum of an integer over all processes (a collective where there are several)."""
  if jax.process_count() == 1:
    return int(value)
  return int(np.sum(multihost_utils.process_allgather(np.int64(value))))
