"""Runs that are killed (SIGKILL, SIGTERM, mid-checkpoint) and restarted give the same
losses, step for step, as a run that was never interrupted."""
import json
import logging
import os
import signal
import subprocess
import sys
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import device_count_flags
from jax_ssl import checkpoint, config as config_lib, metrics, parallel, train
from test_train import REPO, load_config

STEPS, EVERY = 12, 3
# Kills the run inside orbax's last act of checkpoint STEP: renaming the finished
# temporary directory to its final name.
KILL_WHILE_COMMITTING = """
import os, signal, sys
import orbax.checkpoint as ocp
rename = ocp.path.atomicity.AtomicRenameTemporaryPath
finalize = rename.finalize
async def finalize_or_die(self):
  if self.get_final().name == os.environ["KILL_AT_COMMIT_OF"]:
    os.kill(os.getpid(), signal.SIGKILL)
  await finalize(self)
rename.finalize = finalize_or_die
sys.argv[0] = "main.py"
exec(open("main.py").read())
"""


def config_args(digit_folder):
  return [f"--config={REPO / 'configs/simclr_tiny.py'}",
          f"--config.data.source=folder:{digit_folder}", "--config.data.image_size=16",
          "--config.data.shuffle_buffer=160", "--config.train.batch_size=16",
          f"--config.train.max_steps={STEPS}", f"--config.train.checkpoint_every_steps={EVERY}",
          "--config.train.log_every_steps=1", "--config.eval.batch_size=32",
          "--config.eval.linear_epochs=1", "--config.eval.baseline=False"]


def start(args, env=None, script=None):
  env = {**os.environ, "XLA_FLAGS": device_count_flags(8),
         "JAX_PLATFORMS": "cpu", **(env or {})}
  command = ["-c", script] if script else [str(REPO / "main.py")]
  return subprocess.Popen([sys.executable, *command, *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_checkpoint(workdir, step, process, timeout=300):
  """Returns once checkpoint `step` is complete (orbax renames it into place when it is)."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    assert process.poll() is None, process.communicate()[0][-3000:]
    if (workdir / "checkpoints" / str(step)).is_dir():
      return
    time.sleep(0.02)
  raise TimeoutError(f"no checkpoint {step} in {workdir}")


def losses(workdir):
  return {r["step"]: r["loss"] for r in metrics.read_metrics(workdir) if "loss" in r}


def latest_checkpoint(workdir):
  """The step orbax would resume from (read-only: deletes no temporary directory)."""
  options = ocp.CheckpointManagerOptions(read_only=True)
  return ocp.CheckpointManager(workdir / "checkpoints", options=options).latest_step()


@pytest.fixture(scope="module")
def uninterrupted(digit_folder, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("uninterrupted")
  train.train_and_evaluate(load_config(config_args(digit_folder)), str(workdir))
  return workdir


def resume_and_compare(digit_folder, workdir, uninterrupted):
  train.train_and_evaluate(load_config(config_args(digit_folder)), str(workdir))
  resumed = losses(workdir)
  assert sorted(resumed) == list(range(1, STEPS + 1))
  expected = losses(uninterrupted)
  np.testing.assert_array_equal([resumed[s] for s in sorted(resumed)],
                                [expected[s] for s in sorted(expected)])


def test_sigkill_inside_a_checkpoint_keeps_the_one_before(digit_folder, tmp_path, uninterrupted):
  # Killed while committing its second checkpoint: the first is complete, the second a
  # temporary directory that the restarted run ignores and cleans up.
  doomed = 2 * EVERY
  run = start([*config_args(digit_folder), f"--workdir={tmp_path}"],
              env={"KILL_AT_COMMIT_OF": str(doomed)}, script=KILL_WHILE_COMMITTING)
  output = run.communicate(timeout=300)[0]
  assert run.returncode == -signal.SIGKILL, output[-3000:]
  assert list((tmp_path / "checkpoints").glob(f"{doomed}.orbax-checkpoint-tmp*"))
  assert latest_checkpoint(tmp_path) == doomed - EVERY

  resume_and_compare(digit_folder, tmp_path, uninterrupted)
  assert not list((tmp_path / "checkpoints").glob("*.orbax-checkpoint-tmp*"))


def test_sigterm_saves_at_the_step_of_the_signal_and_exits_cleanly(digit_folder, tmp_path,
                                                                    uninterrupted):
  run = start([*config_args(digit_folder), f"--workdir={tmp_path}"])
  wait_for_checkpoint(tmp_path, EVERY, run)
  run.send_signal(signal.SIGTERM)
  output = run.communicate(timeout=300)[0]
  assert run.returncode == 0, output[-3000:]
  stopped_at = max(losses(tmp_path))
  assert f"SIGTERM: stopped at step {stopped_at} with a checkpoint" in output
  assert latest_checkpoint(tmp_path) == stopped_at < STEPS
  resume_and_compare(digit_folder, tmp_path, uninterrupted)


def test_a_changed_config_refuses_to_resume_unless_forced(digit_folder, uninterrupted,
                                                          monkeypatch):
  compiled = []
  monkeypatch.setattr(train.step_lib, "create_state", lambda *a, **k: compiled.append(1))
  changed = load_config([*config_args(digit_folder), "--config.train.batch_size=32",
                         "--config.simclr.temperature=0.5", "--config.train.max_steps=20"])
  with pytest.raises(ValueError, match=r"config.simclr.temperature: 0.2 -> 0.5; "
                     r"config.train.batch_size: 16 -> 32\. .*config.train.force_resume"):
    train.train_and_evaluate(changed, str(uninterrupted))
  assert not compiled
  changed.unlock().train.force_resume = True
  manager = checkpoint.make_manager(str(uninterrupted), changed.train)
  checkpoint.check_resumable(str(uninterrupted), changed, manager)  # forced: no error


def test_a_field_added_since_the_run_began_resumes_at_its_default(digit_folder):
  config = load_config(config_args(digit_folder))
  older = json.loads(json.dumps(checkpoint._as_json(config)))
  del older["data"]["augment"]["lighting_strength"]  # written before the field existed
  assert checkpoint.config_changes(older, config) == []
  config.data.augment.lighting_strength = 2.0  # not the default: a change like any other
  assert checkpoint.config_changes(older, config) == [
      "config.data.augment.lighting_strength: 1.0 -> 2.0"]


def test_small_replicated_arrays_are_saved_whole_and_large_ones_by_slices(tmp_path, caplog):
  """Orbax's per-replica slices of a small array cost a compiled program per device and
  shape; checkpoint.MIN_SLICE_BYTES leaves them whole. A large array is still split."""
  mesh = parallel.make_mesh()
  small = {"bias": jnp.arange(8.0), "kernel": jnp.ones((16, 8))}
  large = {"kernel": jnp.ones((8 * checkpoint.MIN_SLICE_BYTES // 4 + 8,))}  # a slice > 1 MiB
  for name, state in (("small", small), ("large", large)):
    state = jax.device_put(state, parallel.replicated(mesh))
    caplog.clear()
    with caplog.at_level(logging.WARNING), jax.log_compiles():
      manager = checkpoint.make_manager(str(tmp_path / name), config_lib.base_config("simclr").train)
      checkpoint.save(manager, 1, state)
      manager.wait_until_finished()
    slices = [r for r in caplog.records if "Compiling jit(slice)" in r.getMessage()]
    assert bool(slices) == (name == "large"), [r.getMessage()[:80] for r in slices]
    restored = checkpoint.restore_latest(manager, checkpoint.abstract_like(state))
    chex.assert_trees_all_equal(restored, state)
