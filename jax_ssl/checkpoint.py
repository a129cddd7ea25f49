"""Orbax checkpoints of the whole train state: save every N steps, keep K, resume."""
import os

import jax
import orbax.checkpoint as ocp


def make_manager(workdir, train_config):
  options = ocp.CheckpointManagerOptions(
      max_to_keep=train_config.keep_checkpoints, create=True,
      enable_async_checkpointing=True)
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir) if "://" not in workdir else workdir, "checkpoints"),
      options=options, item_names=("state",))


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
