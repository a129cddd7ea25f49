"""Every task through its command line (main.py, python -m jax_ssl.retrieve and
python -m jax_ssl.export) as 2 processes x 4 CPU devices, on a folder with files that fail
to decode and a file that is no image: each finishes, counts the bad files, and evaluates as
1 process x 8 devices does."""
import re
import shutil
import types

import jax
import numpy as np
import pytest

from jax_ssl import data, evaluate, export, metrics, parallel
from test_distributed import REPO, start_processes


def start_command(*argv, num_processes=2):
  """`python ARGV` (main.py or -m module) as the processes of one run, 4 devices each."""
  return start_processes(lambda port, i: [
      *argv, f"--coordinator_address=127.0.0.1:{port}", f"--num_processes={num_processes}",
      f"--process_id={i}"], num_processes)


@pytest.fixture(scope="module")
def bad_files_folder(digit_folder, tmp_path_factory):
  """The digits with a truncated PNG and a zero-byte .png among the training images, a
  truncated PNG among the test images, and a text file named .jpg."""
  root = tmp_path_factory.mktemp("bad_files")
  shutil.copytree(digit_folder, root, dirs_exist_ok=True)
  png = (root / "train" / "digit_3" / "1.png").read_bytes()
  (root / "train" / "digit_3" / "truncated.png").write_bytes(png[:len(png) // 2])
  (root / "train" / "digit_4" / "empty.png").write_bytes(b"")
  (root / "test" / "digit_5" / "truncated.png").write_bytes(png[:len(png) // 2])
  (root / "train" / "digit_6" / "notes.jpg").write_text("not an image")
  return root


@pytest.fixture(scope="module")
def two_process_tasks(bad_files_folder, tmp_path_factory):
  """2 processes x 4 devices run, through their command lines: pretraining with the baseline
  evaluation; then at once, on its workdir, linear_eval :fast, finetune and retrieve; then
  export. Returns the workdirs and each task's outputs. (Standard linear_eval trains its
  probe in finetune's loop, with the encoder frozen: test_supervised.py runs it.)"""
  root = tmp_path_factory.mktemp("two_processes")
  workdir = root / "pretrain"
  main = str(REPO / "main.py")
  tiny_eval = ["--config.eval.batch_size=32", "--config.eval.linear_epochs=2"]
  tiny_train = ["--config.train.batch_size=16", "--config.train.num_epochs=1",
                "--config.train.log_every_steps=5", "--config.eval.batch_size=32"]
  logs = {"pretrain": start_command(
      main, "--config=configs/simclr_tiny.py", f"--workdir={workdir}",
      f"--config.data.source=folder:{bad_files_folder}", "--config.data.image_size=16",
      "--config.train.batch_size=16", "--config.train.max_steps=3", *tiny_eval)()}
  shutil.copytree(workdir / "export", root / "export_at_end")
  pretrained = f"--config.pretrained={workdir}"
  waits = {
      "linear_fast": start_command(main, "--config=configs/linear_eval.py:fast", pretrained,
                                   f"--workdir={root / 'linear_fast'}", *tiny_eval),
      "finetune": start_command(main, "--config=configs/finetune.py", pretrained,
                                f"--workdir={root / 'finetune'}", *tiny_train),
      "retrieve": start_command("-m", "jax_ssl.retrieve", f"--workdir={workdir}", "--queries=3",
                                "--neighbours=4", f"--out={root / 'neighbours.png'}"),
  }
  logs.update({name: wait() for name, wait in waits.items()})
  logs["export"] = start_command("-m", "jax_ssl.export", f"--workdir={workdir}")()
  return types.SimpleNamespace(root=root, workdir=workdir, logs=logs)


def final_record(workdir):
  return metrics.read_metrics(workdir)[-1]


def test_every_task_runs_on_two_processes(two_process_tasks):
  run = two_process_tasks
  records = metrics.read_metrics(run.workdir)
  baseline, final = records[0], records[-1]
  assert baseline["step"] == 0 and 0 <= baseline["baseline_knn_top1"] <= 1
  assert final["step"] == 3 and {"knn_top1", "linear_top5", "alignment", "uniformity",
                                 "effective_rank"} <= set(final)
  assert export.read_info(str(run.root / "export_at_end"))["step"] == 3  # before the evaluation
  for task, key in (("linear_fast", "linear_top1"), ("finetune", "finetune_top1")):
    assert 0 <= final_record(run.root / task)[key] <= 1, task
  assert [r["step"] for r in metrics.read_metrics(run.root / "finetune")
          if "train_loss" in r] == [5, 10]  # 162 training files (2 of them undecodable) / 16
  # Only process 0 writes and prints.
  picture = run.root / "neighbours.png"
  assert picture.read_bytes().startswith(b"\x89PNG")
  for task, printed in (("retrieve", str(picture)), ("export", str(run.workdir / "export")),
                        ("pretrain", "  knn_top1 ")):  # the summary's, before its paths
    (first, _), (second, _) = run.logs[task]
    # A 5-step run may warn, or note a gain within the test set's noise, after the paths.
    closing = re.split(r"  (?:warning|note): ", first.split("\ndone in ")[-1])[0]
    assert printed in "\n".join(closing.splitlines()[-5:]) and printed not in second, task


def test_bad_files_are_skipped_and_counted_by_every_task(two_process_tasks):
  run = two_process_tasks
  records = metrics.read_metrics(run.workdir)
  # Two training images and one test image fail to decode; the text file is left out.
  assert records[0]["baseline_skipped_images"] == records[-1]["skipped_images"] == 3
  assert all(r["skipped_images"] >= 0 for r in records if "loss" in r)
  assert final_record(run.root / "linear_fast")["skipped_images"] == 3
  # The test split's; training counts its own as it goes.
  assert final_record(run.root / "finetune")["skipped_images"] == 1
  assert all("skipped_images" in r for r in metrics.read_metrics(run.root / "finetune")
             if "train_loss" in r)
  first, second = (stderr for _, stderr in run.logs["pretrain"])
  assert first.count("are not JPEG, PNG, GIF or BMP") == 1 and "notes.jpg" in first
  assert "are not JPEG" not in second  # one warning for the run
  # Listed once, though both evaluations skip them.
  assert first.count("failed to decode and are left out of evaluation") == 2  # train, test
  assert "train/digit_3/truncated.png" in first and "test/digit_5/truncated.png" in first


def test_two_processes_evaluate_as_one_process_of_eight(two_process_tasks):
  """The end-of-training evaluation and linear_eval :fast on 2 x 4 devices against the same
  evaluation of the exported encoder here, on 1 x 8: the same examples, the same numbers."""
  run = two_process_tasks
  final = final_record(run.workdir)
  fast = final_record(run.root / "linear_fast")
  config = export.read_run_config(str(run.workdir))
  mesh = parallel.make_mesh()
  backbone, variables, _ = export.load_encoder(str(run.root / "export_at_end"), mesh)
  encode = jax.jit(lambda images: backbone.apply(variables, images, train=False))
  here = evaluate.evaluate_encoder(encode, config, data.make_source(config.data), mesh)
  for key in ("knn_top1_k20", "knn_top1_k200", "linear_top1", "linear_top5", "skipped_images"):
    assert here[key] == final[key], key
  assert (fast["linear_top1"], fast["linear_top5"]) == (here["linear_top1"], here["linear_top5"])
  for key in ("uniformity", "effective_rank"):
    assert here[key] == pytest.approx(final[key], rel=1e-4), key
  # python -m jax_ssl.export on 2 processes wrote the same encoder again.
  _, again, info = export.load_encoder(str(run.workdir), mesh)
  assert info["step"] == 3
  jax.tree.map(np.testing.assert_array_equal, again, variables)
