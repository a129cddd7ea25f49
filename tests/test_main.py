"""main.py as a user meets it: the console of a run, and mistakes answered in one line."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import device_count_flags

REPO = pathlib.Path(__file__).resolve().parent.parent
TINY = f"--config={REPO / 'configs/simclr_tiny.py'}"


def main_py(argv, tmp_path, env=None, devices=1):
  """`python main.py ARGV` with its output captured, so stdout is not a terminal."""
  env = {**os.environ, "XLA_FLAGS": device_count_flags(devices), "JAX_PLATFORMS": "cpu",
         "PYTHONPATH": str(REPO), **(env or {})}
  return subprocess.run([sys.executable, str(REPO / "main.py"), *argv], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=600, check=False)


def assert_one_line_error(result, message):
  assert result.returncode == 2, result.stderr[-3000:]
  assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
  assert re.search(message, result.stderr), result.stderr


@pytest.fixture
def nothing_starts(tmp_path):
  """An environment in which importing TensorFlow or starting a JAX backend fails loudly."""
  fake = tmp_path / "fake_modules"
  (fake / "tensorflow").mkdir(parents=True)
  (fake / "tensorflow" / "__init__.py").write_text("raise ImportError('TensorFlow started')\n")
  return {"PYTHONPATH": f"{fake}{os.pathsep}{REPO}", "JAX_PLATFORMS": "no_such_platform"}


@pytest.mark.parametrize("argv,message", [
    (["--config.train.batchsize=8"],
     r"^config.train.batchsize: unknown field; did you mean config.train.batch_size\?$"),
    (["--config.trian.batch_size=8"], r"^config.trian.batch_size: unknown field; did you mean "
                                      r"config.train.batch_size\?$"),
    (["--config.train.batch_size=eight"], r"config.train.batch_size=eight: invalid literal"),
    (["--config.train.batch_size=8", "again"], r"unexpected arguments \['again'\]"),
])
def test_command_line_mistakes_stop_before_tensorflow_and_jax_start(argv, message, tmp_path,
                                                                    nothing_starts):
  result = main_py([TINY, f"--workdir={tmp_path / 'w'}", *argv], tmp_path, env=nothing_starts)
  assert_one_line_error(result, message)
  assert result.stdout == ""


def test_a_missing_config_file_or_pretrained_workdir_is_one_line(tmp_path, nothing_starts):
  missing = tmp_path / "nowhere.py"
  result = main_py([f"--config={missing}", f"--workdir={tmp_path}"], tmp_path, env=nothing_starts)
  assert_one_line_error(result, f"^--config={missing}: no such file$")
  # Known only once the run looks for it; JAX_LOG_COMPILES would print any compilation.
  result = main_py([f"--config={REPO / 'configs/linear_eval.py'}", f"--workdir={tmp_path / 'w'}",
                    f"--config.pretrained={tmp_path / 'none'}"], tmp_path,
                   env={"JAX_LOG_COMPILES": "1"})
  assert_one_line_error(result, r"config.pretrained='.*none' does not exist; expected the "
                                r"workdir of a pretraining run")


def test_console_of_a_run_then_a_resume_refused_in_one_line(digit_folder, tmp_path):
  args = [TINY, f"--workdir={tmp_path / 'run'}", f"--config.data.source=folder:{digit_folder}",
          "--config.data.image_size=16", "--config.train.batch_size=16",
          "--config.train.max_steps=3", "--config.train.log_every_steps=1",
          "--config.eval.batch_size=32", "--config.eval.linear_epochs=2"]
  result = main_py(args, tmp_path)
  assert result.returncode == 0, result.stderr[-3000:]
  out, err = result.stdout, result.stderr
  # Library INFO is off: no orbax, absl or C++ log line anywhere.
  assert "orbax" not in out + err and not re.search(r"^[IW]\d{4} ", out + err, re.MULTILINE), err
  lines = [line for line in out.splitlines() if line.strip()]
  assert len(lines) == len(set(lines)), out  # every line once
  assert "\r" not in out  # not a terminal: plain lines, no redrawn bar
  assert f"config written to {tmp_path / 'run' / 'config.json'}" in lines
  for phase in ("evaluating the random-init encoder", "compiling the training step",
                "step 3/3 | ", "evaluating the encoder at step 3",
                f"exporting the encoder to {tmp_path / 'run' / 'export'}"):
    assert sum(line.startswith(phase) for line in lines) == 1, (phase, out)
  summary = lines[lines.index(next(line for line in lines if line.startswith("done in "))):]
  assert re.match(r"  linear_top1 +[01]\.\d{3} +\(random init [01]\.\d{3}\)$", summary[1]), out
  assert re.match(r"  knn_top1 +[01]\.\d{3} +\(random init [01]\.\d{3}\)$", summary[2]), out
  assert re.match(r"  test images +40 +\(one standard error of linear_top1: \d+\.\d points\)$",
                  summary[3]), out
  assert f"jax_ssl.torch_model('{tmp_path / 'run' / 'export'}')" in summary[4]
  assert summary[5].startswith(f"  metrics        {tmp_path / 'run' / 'metrics.jsonl'}")
  assert all(line.startswith(("  warning: ", "    - ", "  note: ")) for line in summary[6:]), out

  result = main_py([*args, "--config.simclr.temperature=0.5"], tmp_path,
                   env={"JAX_LOG_COMPILES": "1"})
  assert_one_line_error(result, r"config.simclr.temperature: 0.2 -> 0.5\. Use a new workdir")
  assert "config written" not in result.stdout
