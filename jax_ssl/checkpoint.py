"""Orbax checkpoints of the whole train state: save every N steps, keep K, resume.

Orbax writes each checkpoint into a temporary directory and renames it (on GCS: writes a
commit marker) only once every process has finished, so a write cut short by a kill is
never taken as the latest; the next run deletes it.
"""
import json
import os

import jax
import orbax.checkpoint as ocp
import tensorflow as tf
from absl import logging

from jax_ssl import config as config_lib, metrics

# Orbax splits each replicated array among its replicas so that each copies a slice to the
# host. Every slice is a small program compiled per device and shape: for a model's many
# small biases and norms that costs more than the copy it spreads (seconds per checkpoint
# on 8 CPU devices). Only arrays whose slices reach this size are split.
MIN_SLICE_BYTES = 1 << 20


def _register_array_handler():
  absl_logger = logging.get_absl_logger()
  level = absl_logger.level
  absl_logger.setLevel("ERROR")  # orbax warns on every override of its default handler
  try:
    handler = ocp.type_handlers.ArrayHandler(min_slice_bytes_for_replica_parallel=MIN_SLICE_BYTES)
    ocp.type_handlers.register_type_handler(jax.Array, handler, override=True)
  finally:
    absl_logger.setLevel(level)


_register_array_handler()

# Config fields a resumed run may change: they leave the training trajectory as it was.
RESUMABLE_CHANGES = ("config.train.max_steps", "config.train.log_every_steps",
                     "config.train.checkpoint_every_steps", "config.train.keep_checkpoints",
                     "config.train.force_resume", "config.data.data_dir", "config.eval.")


def _absolute(workdir):
  return workdir if "://" in workdir else os.path.abspath(workdir)


def make_manager(workdir, train_config):
  options = ocp.CheckpointManagerOptions(
      max_to_keep=train_config.keep_checkpoints, create=True,
      enable_async_checkpointing=True, cleanup_tmp_directories=True)
  manager = ocp.CheckpointManager(os.path.join(_absolute(workdir), "checkpoints"),
                                  options=options, item_names=("state",))
  # Orbax deletes an earlier run's unfinished checkpoints in a background thread and waits
  # for it only at the first save. Wait now, so that its listing of the directory never
  # overlaps the run's own setup (under tfds.testing.mock_data, which swaps the file system
  # out while a dataset is built, it raised FileNotFoundError at that first save).
  manager._maybe_await_cleanup_tmp_directory()  # pylint: disable=protected-access
  return manager


def checkpointer():
  """A checkpointer of one pytree outside a run's manager (the exported encoder)."""
  return ocp.StandardCheckpointer()


def save(manager, step, state):
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)), force=True)


def restore_latest(manager, abstract_state):
  """The latest saved state with the shardings of `abstract_state`, or None."""
  step = manager.latest_step()
  if step is None:
    return None
  restored = manager.restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
  return restored["state"]


def abstract_like(state):
  """Shapes, dtypes and shardings of `state`, to restore into without allocating it twice."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)


def _config_path(workdir):
  return os.path.join(_absolute(workdir), "config.json")


def _as_json(config):
  return json.loads(json.dumps(config.to_dict(), default=str))


def write_config(workdir, config):
  """workdir/config.json, from process 0, replaced whole so no reader sees half of it; one
  console line says where."""
  if jax.process_index() != 0:
    return
  tf.io.gfile.makedirs(_absolute(workdir))
  path = _config_path(workdir)
  with tf.io.gfile.GFile(path + ".tmp", "w") as f:
    f.write(json.dumps(_as_json(config), indent=2))
  tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
  metrics.print_line(f"config written to {path}")


def _flatten(tree, prefix="config"):
  if not isinstance(tree, dict):
    return {prefix: tree}
  flat = {}
  for key, value in tree.items():
    flat.update(_flatten(value, f"{prefix}.{key}"))
  return flat


def config_changes(stored, config):
  """'field: old -> new' for each field of `config` that differs from the stored dict.

  A field the stored config lacks, added to the library since that run began, counts as
  its default: a run upgraded across a new field at its default still resumes.
  """
  old, new = _flatten(stored), _flatten(_as_json(config))
  defaults = _flatten(_as_json(config_lib.schema_of(config)))
  old.update({name: defaults[name] for name in new.keys() - old.keys() if name in defaults})
  return [f"{name}: {old.get(name, '(absent)')!r} -> {new.get(name, '(absent)')!r}"
          for name in sorted(old.keys() | new.keys())
          if old.get(name) != new.get(name) and not name.startswith(RESUMABLE_CHANGES)]


def check_resumable(workdir, config, manager):
  """Refuses to resume a checkpoint written under another config, unless forced."""
  path = _config_path(workdir)
  if manager.latest_step() is None or not tf.io.gfile.exists(path):
    return
  with tf.io.gfile.GFile(path) as f:
    changes = config_changes(json.load(f), config)
  if not changes:
    return
  message = f"the config differs from {path}, which wrote its checkpoints: " + "; ".join(changes)
  if not config.train.force_resume:
    raise ValueError(message + ". Use a new workdir, or set config.train.force_resume=True "
                     "to resume with the new values.")
  logging.warning("%s; resuming anyway (config.train.force_resume)", message)
