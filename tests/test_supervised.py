"""Linear evaluation, fine-tuning and labelled fractions, end to end on tiny encoders."""
import numpy as np
import pytest
from test_train import REPO, load_config, run_main

from jax_ssl import config as config_lib, data, export, metrics, supervised
from jax_ssl.data import labelled


def tiny(argv, pretrained):
  return load_config([*argv, f"--config.pretrained={pretrained}", "--config.train.batch_size=16",
                      "--config.train.num_epochs=1", "--config.train.log_every_steps=2",
                      "--config.eval.batch_size=32"])


def test_label_fractions_are_class_balanced_and_deterministic():
  labels = np.repeat(np.arange(4), [100, 200, 50, 30])
  keep = labelled.label_subset(labels, 0.1, seed=0)
  assert [int(keep[labels == c].sum()) for c in range(4)] == [10, 20, 5, 3]
  np.testing.assert_array_equal(keep, labelled.label_subset(labels, 0.1, seed=0))
  assert not np.array_equal(keep, labelled.label_subset(labels, 0.1, seed=1))
  assert labelled.label_subset(labels, 0.001, seed=0).sum() == 4  # at least one a class


def test_labelled_batches_skip_and_count_images_that_fail_to_decode(digit_folder, tmp_path):
  for split in ("train", "test"):
    for digit in (0, 1):
      (tmp_path / split / f"digit_{digit}").mkdir(parents=True)
      for name in ("1.png", "2.jpg", "3.png"):
        source_file = digit_folder / "train" / f"digit_{digit}" / name
        (tmp_path / split / f"digit_{digit}" / name).write_bytes(source_file.read_bytes())
  good = (tmp_path / "train" / "digit_0" / "1.png").read_bytes()
  (tmp_path / "train" / "digit_0" / "half.png").write_bytes(good[:len(good) // 2])
  (tmp_path / "train" / "digit_1" / "empty.png").write_bytes(b"")
  config = config_lib.base_config()
  config.data.update(source=f"folder:{tmp_path}", image_size=16)
  source = data.make_source(config.data)
  batches = labelled.labelled_batches(config.data, source, local_batch_size=3, seed=0)
  images = [next(batches)["image"] for _ in range(20)]  # 60 good images: 10 epochs of 8 files
  assert all(np.isfinite(x).all() and x.shape == (3, 16, 16, 3) for x in images)
  assert 18 < batches.skipped <= 20  # 2 a pass, bar those after the last image delivered
  assert sorted(labelled.shard_labels(source)) == [0] * 4 + [1] * 4  # labels read undecoded


def test_linear_eval_from_the_command_line_inherits_data_and_model(pretrained_workdir, tmp_path):
  out = tmp_path / "linear"
  stdout = run_main([f"--config={REPO / 'configs/linear_eval.py'}", f"--workdir={out}",
                     f"--config.pretrained={pretrained_workdir}", "--config.train.batch_size=16",
                     "--config.train.num_epochs=1", "--config.train.log_every_steps=5",
                     "--config.eval.batch_size=32"], tmp_path)
  final = metrics.read_metrics(out)[-1]
  assert 0 <= final["linear_top1"] <= 1
  assert final["linear_top5"] >= final["linear_top1"] and final["step"] == 10  # 160 / 16
  assert "step 10/10" in stdout


def test_fast_linear_eval_and_finetuning_on_a_labelled_fraction(pretrained_workdir, tmp_path):
  fast = supervised.run(tiny([f"--config={REPO / 'configs/linear_eval.py'}:fast",
                              "--config.eval.baseline=True"], pretrained_workdir),
                        str(tmp_path / "fast"))
  assert set(fast) == {"linear_top1", "linear_top5", "skipped_images", "baseline_linear_top1",
                       "baseline_linear_top5", "baseline_skipped_images"}
  assert fast["skipped_images"] == 0
  config = tiny([f"--config={REPO / 'configs/finetune.py'}", "--config.data.label_fraction=0.5"],
                pretrained_workdir)
  results = supervised.run(config, str(tmp_path / "finetune"))
  assert 0 <= results["finetune_top1"] <= results["finetune_top5"] <= 1
  records = metrics.read_metrics(tmp_path / "finetune")
  assert [r["step"] for r in records if "train_loss" in r] == [2, 4, 5]  # 80 labelled / 16
  assert all(np.isfinite(r["train_loss"]) for r in records if "train_loss" in r)


def test_bad_pretrained_runs_fail_before_compiling(pretrained_workdir, tmp_path, digit_folder,
                                                   monkeypatch):
  monkeypatch.setattr(export, "load_encoder", lambda *a, **k: pytest.fail("compiled"))
  linear = f"--config={REPO / 'configs/linear_eval.py'}"
  with pytest.raises(FileNotFoundError, match="does not exist"):
    supervised.run(tiny([linear], tmp_path / "missing"), str(tmp_path / "w"))
  (tmp_path / "empty").mkdir()
  (tmp_path / "empty" / "notes.txt").write_text("")
  with pytest.raises(FileNotFoundError, match=r"holds \['notes.txt'\]: no exported encoder"):
    supervised.run(tiny([linear], tmp_path / "empty"), str(tmp_path / "w"))
  with pytest.raises(ValueError, match="config.model.arch='resnet18' does not match the encoder "
                                       "exported in .*'arch': 'resnet10'"):
    supervised.run(tiny([linear, "--config.model.arch=resnet18"], pretrained_workdir), str(tmp_path / "w"))
  one_class = tmp_path / "one_class"
  for split in ("train", "test"):
    (one_class / split / "all").mkdir(parents=True)
    (one_class / split / "all" / "a.png").write_bytes(
        (digit_folder / "train" / "digit_0" / "1.png").read_bytes())
  with pytest.raises(ValueError, match="has 1 class.*needs labelled train and test splits"):
    supervised.run(tiny([linear, f"--config.data.source=folder:{one_class}"], pretrained_workdir),
                   str(tmp_path / "w"))
