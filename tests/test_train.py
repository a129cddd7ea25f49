"""The whole training path, end to end on tiny models and 8 simulated devices."""
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
import tensorflow_datasets as tfds
from absl import flags
from ml_collections import config_flags

from conftest import device_count_flags
from jax_ssl import checkpoint, config as config_lib, export, metrics, optim, train

REPO = pathlib.Path(__file__).resolve().parent.parent


def tiny_config(source, **train_overrides):
  c = config_lib.base_config("simclr")
  config_lib.shrink_for_cpu(c)
  c.data.source = source
  c.data.image_size = 16
  c.train.batch_size = 16
  c.train.max_steps = 3
  c.train.checkpoint_every_steps = 2
  c.eval.batch_size = 32
  c.eval.baseline = True
  for key, value in train_overrides.items():
    setattr(c.train, key, value)
  return c


def run_main(argv, tmp_path):
  """Runs `python main.py ARGV` with 8 simulated CPU devices, as a user would."""
  env = {**os.environ, "XLA_FLAGS": device_count_flags(8),
         "JAX_PLATFORMS": "cpu"}
  result = subprocess.run([sys.executable, str(REPO / "main.py"), *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


def load_config(argv):
  """Parses `--config=... --config.a.b=v` exactly as main.py does, in-process."""
  flag_values = flags.FlagValues()
  argv = ["main.py", *argv]
  config_flags.DEFINE_config_file("config", None, "", flag_values=flag_values,
                                  lock_config=True, sys_argv=argv)
  flag_values(argv)
  return flag_values.config


def _check_run(workdir, steps):
  records = metrics.read_metrics(workdir)
  losses = [r["loss"] for r in records if "loss" in r]
  assert [r["step"] for r in records if "loss" in r] == list(range(1, steps + 1))
  assert all(np.isfinite(losses))
  # The first step's rate is not measured: it would mostly time compilation.
  assert all(r["images_per_sec"] > 0 for r in records if "loss" in r and r["step"] > 1)
  final = records[-1]
  for key in ("knn_top1", "linear_top1", "baseline_knn_top1", "baseline_linear_top1"):
    value = next(r[key] for r in records if key in r)
    assert 0.0 <= value <= 1.0
  assert final["step"] == steps and "knn_top1" in final
  assert (pathlib.Path(workdir) / "checkpoints" / str(steps)).is_dir()
  assert list((pathlib.Path(workdir) / "tensorboard").glob("events.out.tfevents.*"))
  assert export.read_info(str(workdir))["step"] == steps  # the encoder was exported


def test_an_image_folder_with_augmentation_on_the_devices(digit_folder, tmp_path, capsys):
  # The device path: the host decodes each crop's window (JPEG and PNG) and flips; the
  # colour ops run in the jitted step on 8 devices.
  config = load_config([f"--config={REPO / 'configs/simclr_tiny.py'}",
                        f"--config.data.source=folder:{digit_folder}",
                        "--config.train.batch_size=16", "--config.data.augment.path=device",
                        "--config.train.max_steps=3", "--config.data.image_size=16",
                        "--config.train.log_every_steps=1", "--config.eval.batch_size=32",
                        "--config.eval.linear_epochs=5"])
  train.train_and_evaluate(config, str(tmp_path))
  _check_run(tmp_path, steps=3)
  stdout = capsys.readouterr().out
  assert "step 3/3" in stdout and "linear_top1" in stdout and "skipped_images 0" in stdout


def test_tfds_mock_data_with_command_line_overrides(tmp_path):
  config = load_config([f"--config={REPO / 'configs/simclr_cifar10.py'}:tiny",
                        "--config.data.source=tfds:cifar10", "--config.train.batch_size=16", "--config.train.max_steps=4",
                        "--config.train.log_every_steps=1", "--config.data.image_size=16",
                        "--config.eval.batch_size=32", "--config.eval.every_epochs=1",
                        "--config.eval.baseline=True", "--config.eval.online_probe=True"])
  assert config.data.source == "tfds:cifar10" and config.train.batch_size == 16
  with tfds.testing.mock_data(num_examples=48):  # 3 steps an epoch
    train.train_and_evaluate(config, str(tmp_path))
  _check_run(tmp_path, steps=4)
  records = metrics.read_metrics(tmp_path)
  evaluated_at = [r["step"] for r in records if "knn_top1" in r]
  assert evaluated_at == [3, 4]  # after epoch 1, and at the end
  for key in ("knn_top1_k20", "knn_top1_k200", "linear_top5", "alignment", "uniformity",
              "effective_rank", "baseline_alignment"):
    assert all(np.isfinite(r[key]) for r in records if key in r) and any(key in r for r in records)
  # The online probe trains in every step and is tested after every epoch and at the end.
  assert all(0 <= r["online_linear_train_top1"] <= 1 for r in records if "loss" in r)
  assert [r["step"] for r in records if "online_linear_top1" in r] == [3, 4]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(digit_folder, tmp_path):
  config = tiny_config(f"folder:{digit_folder}", max_steps=6, checkpoint_every_steps=1)
  config.optim.name = "sgd"
  config.optim.base_lr = 1e30  # the first update after warm-up overflows
  with pytest.raises(train.NonFiniteLossError, match=r"at step (\d).*last good checkpoint is step"):
    train.train_and_evaluate(config, str(tmp_path))
  manager = checkpoint.make_manager(str(tmp_path), config.train)
  last_good = manager.latest_step()
  assert last_good is not None and last_good >= 1
  restored = manager.restore(
      last_good, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(restored["params"]))


def test_bad_data_fails_before_compiling(tmp_path, monkeypatch):
  compiled = []
  monkeypatch.setattr(train.step_lib, "create_state", lambda *a, **k: compiled.append(1))
  with pytest.raises(ValueError, match="config.data.source"):
    train.train_and_evaluate(tiny_config(f"folder:{tmp_path / 'missing'}"), str(tmp_path / "w"))
  with pytest.raises(ValueError, match="config.train.batch_size=4096 is larger"):
    config = tiny_config("builtin:mnist")
    config.train.batch_size = 4096
    train.train_and_evaluate(config, str(tmp_path / "w"))
  assert not compiled


def test_checkpoint_manager_clears_an_unfinished_checkpoint_before_it_returns(tmp_path):
  """Orbax's background clean-up is over when make_manager returns, so it cannot overlap
  what the run does next (building datasets under tfds.testing.mock_data, for one)."""
  unfinished = tmp_path / "checkpoints" / "7.orbax-checkpoint-tmp-1795000000000000"
  (unfinished / "state").mkdir(parents=True)
  (unfinished / "state" / "partial").write_bytes(b"\0" * 64)
  config = config_lib.base_config()
  manager = checkpoint.make_manager(str(tmp_path), config.train)
  assert not unfinished.exists()
  with tfds.testing.mock_data(num_examples=4):
    tfds.load("cifar10", split="train")
  checkpoint.save(manager, 1, {"w": np.ones(3, np.float32)})
  manager.wait_until_finished()
  assert manager.all_steps() == [1]
  manager.close()


@pytest.mark.parametrize("num_train", [1_100, 4_000, 1_281_167])
def test_a_step_budget_is_the_same_on_any_dataset_and_the_schedule_ends_there(num_train):
  c = tiny_config("builtin:mnist", batch_size=64, num_steps=930, warmup_steps=60, max_steps=0)
  steps_per_epoch, total, warmup, last = train.schedule_lengths(c, num_train)
  assert (total, warmup, last) == (930, 60, 930)
  assert steps_per_epoch == num_train // 64
  schedule = optim.warmup_cosine(1.0, warmup, total)
  assert float(schedule(60)) == pytest.approx(1.0) and float(schedule(930)) == 0.0
  c.train.update(num_steps=0, num_epochs=15, warmup_steps=0, warmup_epochs=1)
  assert train.schedule_lengths(c, num_train)[1:3] == (15 * steps_per_epoch, steps_per_epoch)
  c.eval.every_steps = 100
  assert train.eval_interval(c, steps_per_epoch) == 100
