"""The console: plain lines in a log, progress bars on a terminal, the closing summary."""
import types

import numpy as np

from jax_ssl import config as config_lib, metrics


def test_a_log_gets_plain_step_lines_and_a_terminal_a_bar(capsys, monkeypatch):
  logged = {"loss": 1.5, "images_per_sec": 640.0}
  progress = metrics.Progress(total_steps=4, global_batch_size=16, start_step=0)
  progress.restart(1)
  progress.line(2, logged)
  progress.close()
  assert capsys.readouterr().out.startswith("step 2/4 | loss 1.5 | images_per_sec 640 | eta ")

  monkeypatch.setattr(metrics, "interactive", lambda: True)
  progress = metrics.Progress(total_steps=4, global_batch_size=16, start_step=0)
  progress.restart(1)
  for step in (2, 3):
    progress.advance(step)
  progress.line(3, logged)
  metrics.print_line("a line above the bar")
  progress.close()
  out = capsys.readouterr().out
  assert "\r" in out and "3/4" in out and "loss 1.5 | 640 images/s" in out
  assert "step 3/4 |" not in out and out.count("a line above the bar") == 1


def test_evaluation_bar_counts_encoded_images(capsys, monkeypatch):
  monkeypatch.setattr(metrics, "interactive", lambda: True)
  source = types.SimpleNamespace(num_train=100, num_test=28)
  with metrics.EvalProgress("evaluating x", source, types.SimpleNamespace(max_train_examples=0)) \
      as progress:
    encode = progress.counting(lambda images: images * 2)
    for _ in range(3):
      assert encode(np.ones((64, 1))).sum() == 128
  out = capsys.readouterr().out
  assert out.startswith("evaluating x: features of 128 images, kNN, linear probe\n")
  assert "128/128" in out and "kNN and linear probe" in out


def test_summary_sets_pretrained_against_random_init(capsys, tmp_path):
  results = {"linear_top1": 0.9341, "baseline_linear_top1": 0.759, "knn_top1": 0.868,
             "baseline_knn_top1": 0.75, "loss": 1.7}
  metrics.print_summary(results, str(tmp_path), 125.0, exported=True)
  lines = capsys.readouterr().out.splitlines()
  assert lines[:3] == ["done in 2m05s", "  linear_top1    0.934   (random init 0.759)",
                       "  knn_top1       0.868   (random init 0.750)"]
  assert f"{tmp_path}/export" in lines[3] and f"{tmp_path}/metrics.jsonl" in lines[4]
  assert "warning" not in "".join(lines)


def test_summary_warns_when_pretraining_gained_under_two_points(capsys, tmp_path):
  results = {"linear_top1": 0.135, "baseline_linear_top1": 0.121, "knn_top1": 0.13,
             "baseline_knn_top1": 0.12, "epoch": 14.9}
  metrics.print_summary(results, str(tmp_path), 125.0, exported=True)
  lines = capsys.readouterr().out.splitlines()
  assert f"{tmp_path}/export" in lines[3] and f"{tmp_path}/metrics.jsonl" in lines[4]
  assert lines[5].startswith("  warning: pretraining gained +1.4 points of linear top-1")
  causes = " ".join(lines[6:])
  assert "too few steps (14.9 epochs)" in causes and "config.train.num_steps" in causes
  assert "shortcut" in causes and "color_strength" in causes
  assert "lighting_prob=0.8" in causes and "collapsed" not in causes
  assert config_lib.lighting_robust_flags() in causes  # the settings simclr_tiny takes


def test_the_warning_names_a_collapse_first_when_the_features_lost_their_rank(capsys, tmp_path):
  # MoCo v2's run on a folder of glyphs over colour gradients: effective rank 1.9 where the
  # random-init encoder's features had 7.1.
  results = {"linear_top1": 0.082, "baseline_linear_top1": 0.135, "effective_rank": 1.86,
             "baseline_effective_rank": 7.13}
  metrics.print_summary(results, str(tmp_path), 60.0, exported=False)
  lines = capsys.readouterr().out.splitlines()
  first = lines.index(next(line for line in lines if "likely causes" in line)) + 1
  assert lines[first] == ("    - the features collapsed: their effective rank is 1.9, the "
                          "random-init encoder's 7.1; the loss was met without telling the "
                          "images apart")
  # Half the baseline's rank or more is no collapse.
  metrics.print_summary({**results, "effective_rank": 3.6}, str(tmp_path), 60.0,
                        exported=False)
  assert "collapsed" not in capsys.readouterr().out


def test_summary_gives_the_test_set_size_and_notes_a_gain_within_its_noise(capsys, tmp_path):
  # 300 test images: linear top-1 0.16 has a standard error of 2.1 points, and a gain of 3
  # points over 0.13 is under two standard errors of the difference (2 x 2.9).
  results = {"linear_top1": 0.16, "baseline_linear_top1": 0.13, "test_images": 300}
  metrics.print_summary(results, str(tmp_path), 60.0, exported=False)
  lines = capsys.readouterr().out.splitlines()
  assert lines[2] == "  test images    300   (one standard error of linear_top1: 2.1 points)"
  assert lines[-1].startswith("  note: a gain of +3.0 points is under two standard errors "
                              "(2.9 points each) of what 300 test images can tell apart")
  assert "warning" not in "".join(lines)
  # The same gain on 10,000 test images is no note.
  metrics.print_summary({**results, "test_images": 10000}, str(tmp_path), 60.0, exported=False)
  assert "note" not in capsys.readouterr().out


def test_result_lines_print_image_counts_as_whole_numbers(capsys):
  metrics.print_results({"linear_top1": 0.5, "test_images": 300.0, "skipped_images": 2.0})
  assert capsys.readouterr().out.strip() == (
      "linear_top1 0.5000 | test_images 300 | skipped_images 2")
