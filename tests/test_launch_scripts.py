"""The tpu/ and slurm/ scripts: shellcheck-clean, and the commands they give gcloud and
srun (recorded by stand-ins on PATH)."""
import os
import pathlib
import shlex
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SCRIPTS = sorted(REPO.glob("tpu/*.sh")) + sorted(REPO.glob("slurm/*.sbatch"))
TPU = ["--name=ssl", "--zone=us-central2-b"]
# Records each call's arguments on one line; answers the queued resource's state.
RECORDER = """#!/usr/bin/env bash
printf '%q ' "$@" >> "$CALLS"
echo >> "$CALLS"
if [[ "$*" == *"queued-resources describe"* ]]; then echo "${STATE:-ACTIVE}"; fi
"""


@pytest.fixture
def recorded(tmp_path):
  """Runs a script with stand-in `gcloud` and `srun`; returns (result, calls)."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for tool in ("gcloud", "srun"):
    (bin_dir / tool).write_text(RECORDER)
    (bin_dir / tool).chmod(0o755)
  calls = tmp_path / "calls"

  def run(script, *args, state="ACTIVE"):
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
           "STATE": state, "TPU_POLL_SECONDS": "0"}
    result = subprocess.run(["bash", str(REPO / script), *args], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60, check=False)
    lines = calls.read_text().splitlines() if calls.exists() else []
    calls.unlink(missing_ok=True)
    return result, [shlex.split(line) for line in lines]

  return run


def test_scripts_are_shellcheck_clean():
  shellcheck = shutil.which("shellcheck")
  if shellcheck is None:
    pytest.fail("shellcheck is not installed: python3 -m pip install -e '.[test]'")
  result = subprocess.run([shellcheck, "-x", *map(str, SCRIPTS)], cwd=REPO,
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stdout


def test_create_a_spot_vm(recorded):
  result, calls = recorded("tpu/create.sh", *TPU, "--type=v4-32", "--spot")
  assert result.returncode == 0, result.stderr
  assert calls == [["compute", "tpus", "tpu-vm", "create", "ssl", "--accelerator-type=v4-32",
                    "--version=tpu-ubuntu2204-base", "--spot", "--zone=us-central2-b"]]


def test_create_through_a_queued_resource_and_wait(recorded):
  result, calls = recorded("tpu/create.sh", *TPU, "--project=p", "--queued", "--spot",
                           "--version=v2-alpha-tpuv5-lite", "--type=v5litepod-16")
  assert result.returncode == 0, result.stderr
  assert calls == [
      ["compute", "tpus", "queued-resources", "create", "ssl", "--node-id=ssl",
       "--accelerator-type=v5litepod-16", "--runtime-version=v2-alpha-tpuv5-lite", "--spot",
       "--zone=us-central2-b", "--project=p"],
      ["compute", "tpus", "queued-resources", "describe", "ssl",
       "--format=value(state.state)", "--zone=us-central2-b", "--project=p"]]
  result, _ = recorded("tpu/create.sh", *TPU, "--queued", state="FAILED")
  assert result.returncode != 0 and "queued resource ssl is FAILED" in result.stderr


@pytest.mark.parametrize("args, error", [
    ([], "--name=NAME is required"),
    (["--name=ssl", "--zone=z", "--queued", "--preemptible"], "take --spot, not --preemptible"),
    (["--name=ssl", "--zone=z", "--typo=1"], "unknown options: --typo=1"),
])
def test_bad_options_are_named(recorded, args, error):
  result, calls = recorded("tpu/create.sh", *args)
  assert result.returncode == 2 and error in result.stderr and not calls


def test_launch_needs_a_gcs_workdir(recorded):
  result, calls = recorded("tpu/launch.sh", *TPU, "--config=configs/simclr_r50.py",
                           "--workdir=/tmp/run")
  assert result.returncode == 2 and "--workdir=gs://" in result.stderr and not calls


def test_the_whole_round_trip(recorded):
  main_args = ["--config=configs/simclr_r50.py", "--workdir=gs://bucket/run",
               "--config.data.source=folder:/data/my images"]
  result, calls = recorded("tpu/run.sh", *TPU, "--queued", "--spot", *main_args)
  assert result.returncode == 0, result.stderr
  verbs = [call[2:4] + [a for a in call if a.startswith("--worker")] for call in calls]
  assert verbs == [["queued-resources", "create"], ["queued-resources", "describe"],
                   ["tpu-vm", "scp", "--worker=all"],   # the committed source
                   ["tpu-vm", "ssh", "--worker=all"],   # pip install on every worker
                   ["tpu-vm", "ssh", "--worker=all"],   # main.py on every worker
                   ["tpu-vm", "ssh", "--worker=0"],     # its log
                   ["queued-resources", "delete"]]
  install, launch = (next(a for a in calls[i] if a.startswith("--command=")) for i in (3, 4))
  assert "pip install" in install and "jax[tpu]" in install
  remote = shlex.split(launch.removeprefix("--command="))
  assert remote[remote.index("main.py") + 1:][:3] == main_args  # quoted intact
  assert calls[-1] == ["compute", "tpus", "queued-resources", "delete", "ssl", "--force",
                       "--quiet", "--zone=us-central2-b"]  # the TPU VM with it


def test_slurm_starts_one_main_per_task(recorded):
  result, calls = recorded("slurm/pretrain.sbatch", "configs/simclr_r50.py", "/shared/run",
                           "--config.train.batch_size=4096")
  assert result.returncode == 0, result.stderr
  assert calls == [["--gpu-bind=none", "python3", "main.py", "--config=configs/simclr_r50.py",
                    "--workdir=/shared/run", "--config.train.batch_size=4096"]]
