"""Many processes train exactly as one: 2 processes x 4 CPU devices (gloo collectives)
against 1 process x 8 devices and 1 process x 1 device, on the same global batches."""
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import distributed_steps
from conftest import device_count_flags
from jax_ssl import parallel

# One line per method whose loss crosses devices.
# MoCo v3 gathers its negatives as SimCLR does (an all_gather of the embeddings); MoCo
# v2's shuffle-BN is per device by design and is checked against a by-hand per-device
# forward in test_methods.py.
# DINO's teacher centre is an EMA of the global batch's mean, kept in the method's state
# (compared here too); its ViT recipe also draws each example's stochastic depth from the
# step's rng, which must give every device layout the same paths.
# Barlow Twins and VICReg take their statistics over the global batch with the same psum;
# their losses are checked sharded against unsharded in test_losses.py, and they are left
# out here to keep the suite within its time.
RECIPES = ["configs/simclr_tiny.py", "configs/swav_tiny.py", "configs/dino_vit_small.py:tiny"]
# The whole run on 1 device too, for one recipe: SwAV's Sinkhorn and DINO's loss are checked
# sharded against unsharded in test_method_losses.py and test_dino.py.
ONE_DEVICE_RECIPES = ("configs/simclr_tiny.py",)
# Sinkhorn's exp(scores / epsilon) magnifies the rounding of another reduction order
# (see distributed_steps.recipe_config): parameters of about 1e-2 part by 1e-5 to 6e-5
# after 5 steps, depending on the batches drawn.
# Attention's key bias gets no gradient but rounding (a softmax ignores a shift that every
# key shares), which Adam scales up to steps of the learning rate's size: 2e-6 apart.
PARAM_ATOL = {"configs/swav_tiny.py": 1e-4, "configs/dino_vit_small.py:tiny": 1e-5}
STEPS = 5
WORKER = pathlib.Path(distributed_steps.__file__)
REPO = WORKER.parent.parent


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def repo_env():
  """This environment with the repository first on PYTHONPATH, for a Python subprocess."""
  return {**os.environ,
          "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def start_processes(argv_of, num_processes=2, devices_each=4):
  """Starts `python argv_of(port, i)` for each process i of one run on this machine, each with
  `devices_each` CPU devices; returns a wait that checks they all succeeded and gives each
  process's (stdout, stderr)."""
  env = {**repo_env(), "JAX_PLATFORMS": "cpu", "XLA_FLAGS": device_count_flags(devices_each)}
  port = free_port()
  workers = [subprocess.Popen([sys.executable, *argv_of(port, i)], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(num_processes)]

  def outputs():
    logs = [w.communicate(timeout=600) for w in workers]
    for i, (worker, (_, stderr)) in enumerate(zip(workers, logs)):
      assert worker.returncode == 0, f"process {i} of {argv_of(port, i)} failed:\n{stderr[-3000:]}"
    return logs

  return outputs


def run_processes_async(recipe, batches, out, num_processes=2, devices_each=4):
  """Starts the steps in `num_processes` local processes; returns a wait for their results."""
  wait = start_processes(lambda port, i: [str(WORKER), recipe, str(batches), str(out), str(port),
                                          str(num_processes), str(i)],
                         num_processes, devices_each)

  def results():
    wait()
    return dict(np.load(out))

  return results


def test_the_workers_load_every_method_and_their_recipes_without_tensorflow():
  # TensorFlow only makes batches; a worker that imported it would spend 7 s of its start-up.
  # The worker's own module, every method module and the recipes it is started with.
  script = ("import sys; sys.path.insert(0, 'tests'); import distributed_steps; "
            "from jax_ssl import methods; methods.names(); "
            f"[distributed_steps.recipe_config(r) for r in {RECIPES!r}]; "
            "print('tensorflow' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       env=repo_env(), cwd=REPO, check=True, timeout=120).stdout
  assert out.strip() == "False"


@pytest.mark.parametrize("recipe", RECIPES)
def test_two_processes_train_like_one(recipe, tmp_path):
  config = distributed_steps.recipe_config(recipe)
  batches = distributed_steps.global_batches(config, STEPS)
  distributed_steps.save_batches(batches, tmp_path / "batches.npz")
  # Started first, so the in-process runs below overlap with the workers' start-up.
  wait_two_by_four = run_processes_async(recipe, tmp_path / "batches.npz", tmp_path / "out.npz")
  eight = distributed_steps.run_steps(config, parallel.make_mesh(jax.devices()), batches)
  others = {}
  if recipe in ONE_DEVICE_RECIPES:
    others["1 process x 1 device"] = distributed_steps.run_steps(
        config, parallel.make_mesh(jax.devices()[:1]), batches)
  others["2 processes x 4 devices"] = two_by_four = wait_two_by_four()

  assert all(other.keys() == eight.keys() for other in others.values())
  assert np.all(np.isfinite(eight["loss"])) and len(set(eight["loss"])) > 1
  np.testing.assert_allclose(eight["learning_rate"], two_by_four["learning_rate"], rtol=0)
  for name, other in others.items():
    np.testing.assert_allclose(other["loss"], eight["loss"], rtol=1e-5, err_msg=name)
    for key in eight:
      np.testing.assert_allclose(other[key], eight[key], rtol=1e-4,
                                 atol=PARAM_ATOL.get(recipe, 1e-6),
                                 err_msg=f"{name}: {key}")
