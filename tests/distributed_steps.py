"""A few training steps of a recipe on the same global batches, however many processes.

tests/test_distributed.py calls `run_steps` in its own process (8 devices, then 1) and
starts this file once per process of a multi-process run:

  python tests/distributed_steps.py RECIPE BATCHES OUT PORT NUM_PROCESSES PROCESS_ID

BATCHES (an .npz file of `save_batches`) holds the whole global batch of each step, read
once from an unsharded pipeline; every process keeps its own rows of it, so all layouts
see the same examples in the same order. Process 0 writes the losses, learning rates and
final parameters to OUT (an .npz file).
"""
import importlib.util
import pathlib
import sys

import jax
import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from jax_ssl import models, optim, parallel, step as step_lib  # noqa: E402


def recipe_config(recipe):
  """`configs/x.py` or `configs/x.py:tiny`, shrunk to 16-pixel digits and a batch of 16."""
  path, _, arg = recipe.partition(":")
  spec = importlib.util.spec_from_file_location("recipe", REPO / path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg or None)
  config.data.source = "builtin:mnist"
  config.data.image_size = 16
  config.data.shuffle_buffer = 64
  config.train.batch_size = 16
  # SwAV's codes are exp(scores / epsilon), which magnifies the rounding of another
  # reduction order by 1 / epsilon at every step: at 0.05, parameters of 1 and 8 devices
  # part by 3e-4 within 5 steps; at 0.5 by 1e-5, so the comparison stays about the
  # distributed sums rather than float chaos.
  if config.method == "swav":
    config.swav.epsilon = 0.5
  # Barlow Twins standardises each embedding dimension by its spread over the batch, which
  # magnifies the rounding of another reduction order where a dimension barely varies: at
  # its tiny recipe's learning rate, losses of 2 x 4 and 1 x 8 devices part by 3e-4 at the
  # fifth step (1e-7 before); a tenth of it keeps the comparison about the global sums.
  # VICReg's variance term takes the square root of each dimension's variance over the
  # batch, and its gradient grows as that variance shrinks: with the tiny recipe's views its
  # first BN biases on 1 and 8 devices parted by 6e-4 within 5 steps at its learning rate.
  if config.method in ("barlow_twins", "vicreg"):
    config.optim.base_lr /= 10
  if models.is_vit(config.model):  # 2 blocks; 4 x 4 patches of 4 pixels, 2 x 2 on local crops
    config.model.update(image_size=16, patch_size=4, depth=2)
    for view in config.data.views.values():
      if view.size:
        view.size = 8
  return config


def global_batches(config, steps):
  """The whole global batch of each of `steps` steps, as one process would read it."""
  from jax_ssl import data  # noqa: PLC0415  (TensorFlow only where batches are made)
  source = data.make_source(config.data)
  batches = data.pretrain_batches(config.data, source, local_batch_size=config.train.batch_size,
                                  seed=config.seed)
  return [next(batches) for _ in range(steps)]


def save_batches(batches, path):
  np.savez(path, **{key: np.stack([b[key] for b in batches]) for key in batches[0]})


def load_batches(path):
  stacked = dict(np.load(path))
  steps = len(next(iter(stacked.values())))
  return [{key: value[i] for key, value in stacked.items()} for i in range(steps)]


def own_rows(batch):
  """This process's contiguous share of a global batch."""
  size = parallel.local_batch_size(len(batch["label"]))
  start = jax.process_index() * size
  return jax.tree.map(lambda x: x[start:start + size], batch)


def first_copy(x):
  """A replicated array's value on this host, even when other hosts hold copies too."""
  return np.asarray(x.addressable_data(0))


def run_steps(config, mesh, batches):
  """Losses, learning rates and final parameters after one step per batch on `mesh`."""
  schedule = optim.warmup_cosine(
      optim.scaled_learning_rate(config.optim, config.train.batch_size), 2, 10)
  method, run, tx, schedule = step_lib.make_run(config, mesh, steps_per_epoch=5, total_steps=10,
                                                schedule=schedule)
  state = step_lib.create_state(run, method, tx)
  train_step = step_lib.make_train_step(run, method, tx, schedule)
  losses, rates = [], []
  for batch in batches:
    state, step_metrics = train_step(state, parallel.global_batch(own_rows(batch), mesh))
    losses.append(first_copy(step_metrics["loss"]))
    rates.append(first_copy(step_metrics["learning_rate"]))
  params = {jax.tree_util.keystr(path): first_copy(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(state["params"])}
  # The method's replicated state too (DINO's centre), but not a per-device share of one
  # sharded over the batch (a queue), whose shape depends on the mesh.
  method_state = {f"method_state{jax.tree_util.keystr(path)}": first_copy(leaf)
                  for path, leaf in jax.tree_util.tree_leaves_with_path(state["method_state"])
                  if leaf.sharding.is_fully_replicated}
  return {"loss": np.array(losses), "learning_rate": np.array(rates), **params,
          **method_state}


def main(recipe, batches, out, port, num_processes, process_id):
  jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                             num_processes=int(num_processes), process_id=int(process_id))
  results = run_steps(recipe_config(recipe), parallel.make_mesh(), load_batches(batches))
  if jax.process_index() == 0:
    np.savez(out, **results)


if __name__ == "__main__":
  main(*sys.argv[1:])
