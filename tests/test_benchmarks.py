"""The throughput benchmark runs on CPU with a tiny model and reports sane figures."""
import collections
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import benchmark_scripts
from jax_ssl import compare, flops, models


def load_benchmark():
  return benchmark_scripts.load("step_throughput")


def test_step_throughput_on_cpu():
  bench = load_benchmark()
  args = bench.parse_args(["--model", "resnet10", "--width", "0.125", "--image_size", "16",
                           "--batch", "16", "--dtype", "float32", "--steps", "2", "--warmup", "1"])
  result = bench.run(args)
  assert result["images_per_sec"] > 0
  assert result["step_ms"] == pytest.approx(1000 * 16 / result["images_per_sec"])
  assert result["device"] == "cpu" and result["mfu"] is None and result["num_devices"] == 8
  # Training costs about 3x the backbone's forward pass over both views; the
  # first conv needs no input gradient and the head adds a little.
  backbone = models.resnet(10, width_multiplier=0.125, cifar_stem=True)
  x = jnp.zeros((32, 16, 16, 3))
  variables = backbone.init(jax.random.key(0), x, train=False)
  forward = flops.count_flops(lambda v, x: backbone.apply(v, x, train=False), variables, x)
  assert 2.7 * forward < result["tflops_per_step"] * 1e12 < 3.1 * forward


def test_step_throughput_runs_a_multicrop_method():
  bench = load_benchmark()
  args = bench.parse_args(["--method", "swav", "--model", "resnet10", "--width", "0.125",
                           "--image_size", "16", "--batch", "16", "--dtype", "float32",
                           "--steps", "1", "--warmup", "1"])
  result = bench.run(args)
  assert result["images_per_sec"] > 0 and result["tflops_per_step"] > 0


def vit_args(bench, *argv):
  """The benchmark's arguments for a ViT recipe shrunk to 2 blocks of ViT-Tiny at 32 px."""
  return bench.parse_args([*argv, "--model", "vit_tiny", "--depth", "2", "--image_size", "32",
                           "--batch", "16", "--dtype", "bfloat16", "--steps", "1",
                           "--warmup", "1"])


def test_step_throughput_runs_dinos_vit_recipe_in_bfloat16():
  """DINO's ViT-S multi-crop (its tiny variant: a small head, 4-pixel patches), the local
  crops scaled with the image to a multiple of the patch."""
  bench = load_benchmark()
  args = vit_args(bench, "--method", "dino", "--recipe", "dino_vit_small:tiny",
                  "--local_crops", "3")
  config = bench.build_config(args)
  assert (config.model.arch, config.model.depth, config.model.dtype) == (
      "vit_tiny", 2, "bfloat16")
  assert config.model.drop_path_rate == 0.1  # the recipe's stochastic depth, rng and all
  assert (config.data.views.local.count, config.data.views.local.size) == (3, 8)
  result = bench.run(args)
  assert result["recipe"] == "dino_vit_small:tiny" and result["model"] == "vit_tiny"
  assert result["images_per_sec"] > 0 and np.isfinite(result["loss"])
  assert result["tflops_per_step"] > 0


def test_step_throughput_takes_maes_vit_recipe_for_mae():
  bench = load_benchmark()
  config = bench.build_config(vit_args(bench, "--method", "mae"))
  assert config.method == "mae" and config.model.arch == "vit_tiny"
  assert config.model.patch_size == 16 and config.mae.decoder_depth == 8  # mae_vit_base's


def test_step_throughput_against_torch_and_recorded(tmp_path, capsys):
  pytest.importorskip("torch")
  bench = load_benchmark()
  results = tmp_path / "results.jsonl"
  results.write_text('{"earlier": "record"}\n')
  # test_step_throughput_on_cpu's settings: the JAX step comes from the compilation cache.
  argv = ["--model", "resnet10", "--width", "0.125", "--image_size", "16", "--batch", "16",
          "--dtype", "float32", "--steps", "2", "--warmup", "1", "--torch", "--record",
          "--results_file", str(results), "--note", "tiny"]
  bench.main(argv)
  printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert printed["images_per_sec"] > 0 and printed["torch_images_per_sec"] > 0
  assert printed["ratio_vs_torch"] == pytest.approx(
      printed["images_per_sec"] / printed["torch_images_per_sec"])
  assert printed["torch_device"] == "cpu" and printed["torch_compile"] is False

  earlier, recorded = [json.loads(line) for line in results.read_text().splitlines()]
  assert earlier == {"earlier": "record"}
  assert recorded["images_per_sec"] == round(printed["images_per_sec"], 1)
  assert recorded["ratio_vs_torch"] == round(printed["ratio_vs_torch"], 3)
  assert recorded["note"] == "tiny" and recorded["width"] == 0.125
  assert recorded["command"].startswith("python benchmarks/step_throughput.py --model resnet10")
  assert "jax " in recorded["versions"] and "torch " in recorded["versions"]
  assert len(recorded["date"]) == 10  # YYYY-MM-DD


def test_torch_comparison_is_for_simclr_only(capsys):
  with pytest.raises(SystemExit):
    load_benchmark().parse_args(["--method", "byol", "--torch"])
  assert "--torch compares SimCLR only" in capsys.readouterr().err


@pytest.mark.parametrize("image_size, path, config", [
    (32, "host", ""), (224, "device", ""), (224, "device", "swav_r50"), (224, "baseline", "")])
def test_input_pipeline_benchmark_delivers_views_and_records_them(image_size, path, config,
                                                                  tmp_path):
  bench = benchmark_scripts.load("input_pipeline")
  results = tmp_path / "results.jsonl"
  args = bench.parse_args(["--image_size", str(image_size), "--path", path, "--seconds", "0.2",
                           "--batch", "8", "--num_images", "12", "--warmup_batches", "1",
                           "--data_dir", str(tmp_path / "data"), "--config", config,
                           "--results_file", str(results)])
  result = bench.run(args)
  assert result["recipe"] == (config or bench.RECIPES[image_size])
  assert result["views_per_sec"] > 0 and result["batches"] >= 1
  # Every view of a batch counts: SimCLR's 2 per image, multi-crop's 2 + 6.
  views_per_image = 8 if config == "swav_r50" else 2
  assert result["views_per_sec"] == pytest.approx(
      result["batches"] * 8 * views_per_image / result["seconds"], rel=0.05)
  assert (result["image_size"], result["path"], result["batch"]) == (image_size, path, 8)
  assert result["host_cores"] >= 1 and result["num_devices"] == 8
  assert ("device_augment_ms" in result) == (path == "device")
  bench.record(result, args, results)
  recorded = json.loads(results.read_text().splitlines()[-1])
  assert recorded["benchmark"] == "input_pipeline"
  assert recorded["views_per_sec"] == result["views_per_sec"] and "tensorflow-cpu" in recorded[
      "versions"]


def test_straightforward_baseline_makes_two_different_simclr_views():
  bench = benchmark_scripts.load("input_pipeline")
  straightforward = benchmark_scripts.load("straightforward")
  data_config = bench.recipe_data_config(32)
  batch = next(straightforward.pretrain_dataset(
      data_config, bench.array_source(16), batch_size=8).as_numpy_iterator())
  assert batch["view1"].shape == batch["view2"].shape == (8, 32, 32, 3)
  for views in (batch["view1"], batch["view2"]):
    assert views.dtype == np.float32 and views.min() >= 0.0 and views.max() <= 1.0
  assert np.abs(batch["view1"] - batch["view2"]).mean() > 0.02


def test_input_pipeline_baseline_is_for_simclr_views_only(tmp_path):
  bench = benchmark_scripts.load("input_pipeline")
  args = bench.parse_args(["--image_size", "224", "--path", "baseline", "--config", "swav_r50",
                           "--data_dir", str(tmp_path)])
  with pytest.raises(ValueError, match="SimCLR views only"):
    bench.run(args)


def test_eval_memory_bank_is_made_sharded_and_recorded_per_process(tmp_path, monkeypatch):
  bench = benchmark_scripts.load("eval_memory")
  from jax_ssl import evaluate, parallel  # noqa: PLC0415
  mesh = parallel.make_mesh()
  bank = bench.synthetic_split(jax.random.key(0), 3000, 16, 5, mesh, spread=0.5, block=100)
  assert bank.x.shape == (3200, 16) and len(bank.x.addressable_shards) == 8
  assert evaluate.num_examples(bank) == 3000
  test = bench.synthetic_split(jax.random.key(0), 200, 16, 5, mesh, spread=0.5, block=100)
  assert evaluate.knn_top1(bank, test, 5, k=20) > 0.9  # the same class centres in both
  results = tmp_path / "results.jsonl"
  monkeypatch.setattr("sys.argv", ["eval_memory.py", "--rows", "3000"])
  args = bench.parse_args(["--rows", "3000"])
  bench.record([{"process": i, "rows": 3000, "peak_rss_mb": 900.0} for i in range(2)], args,
               results)
  recorded = [json.loads(line) for line in results.read_text().splitlines()]
  assert [r["process"] for r in recorded] == [0, 1]
  assert recorded[0]["mode"] == "sharded" and recorded[0]["bank_mb_per_process"] == 2.9
  assert recorded[0]["command"] == "python benchmarks/eval_memory.py --rows 3000"


def test_laptop_torch_job_follows_simclr_tiny_and_reports_its_figures():
  pytest.importorskip("torch")
  laptop = benchmark_scripts.load("laptop_torch")
  recipe = laptop.recipe()
  tiny = compare.load_config(str(benchmark_scripts.BENCHMARKS.parent / "configs/simclr_tiny.py"))
  a = tiny.data.augment
  assert (recipe["batch"], recipe["steps"], recipe["warmup_steps"], recipe["width"],
          recipe["temperature"], recipe["jitter"], recipe["crop_min"], recipe["highpass_prob"],
          recipe["highpass_sigma"], recipe["lighting_prob"], recipe["lighting_strength"]) == (
      tiny.train.batch_size, tiny.train.num_steps, tiny.train.warmup_steps,
      tiny.model.width_multiplier, tiny.simclr.temperature, tuple(a.jitter), a.crop_area_min,
      a.highpass_prob, a.highpass_sigma, a.lighting_prob, a.lighting_strength)
  result = laptop.torch_job({**recipe, "steps": 3, "warmup_steps": 1, "probe_epochs": 1}, workers=0)
  assert result["images_per_sec"] > 0 and np.isfinite(result["loss"])
  assert 0 <= result["knn_top1"] <= 1 and 0 <= result["linear_top1"] <= 1
  assert result["train_start_s"] <= result["train_end_s"]


def corner_contrast(images):
  """Per image, the larger difference of opposite 4 x 4 corners' means, summed over RGB:
  large under a gradient, noise-sized on a flat colour."""
  corner = [images[:, rows, cols].mean((1, 2)) for rows in (slice(0, 4), slice(-4, None))
            for cols in (slice(0, 4), slice(-4, None))]  # TL, TR, BL, BR
  return np.maximum(np.abs(corner[0] - corner[3]).sum(-1), np.abs(corner[1] - corner[2]).sum(-1))


def test_colour_folders_are_balanced_coloured_and_draw_different_glyphs(monkeypatch):
  folders = benchmark_scripts.load("colour_folders")
  glyphs_drawn = []
  draw = folders._draw

  def recording_draw(glyph, *args):
    glyphs_drawn.append(glyph.tobytes())
    return draw(glyph, *args)

  monkeypatch.setattr(folders, "_draw", recording_draw)
  letters_drawn = []
  letter = folders._letter

  def recording_letter(char, font, *args):
    letters_drawn.append((char, font))
    return letter(char, font, *args)

  monkeypatch.setattr(folders, "_letter", recording_letter)
  glyphs_of = {}
  for maker, seed, lit_by_gradient in [(folders.flat_digits, 1, False),
                                       (folders.gradient_digits, 3, True),
                                       (folders.letter_gradients, 4, True)]:
    glyphs_drawn.clear()
    examples = list(maker(np.random.default_rng(seed)))
    glyphs_of[maker.__name__] = set(glyphs_drawn)
    across = corner_contrast(np.array([image for image, _, _ in examples], float))
    assert (np.median(across) > 100) if lit_by_gradient else (np.median(across) < 40)
    labels = np.array([label for _, label, _ in examples])
    is_test = np.array([test for _, _, test in examples])
    assert np.bincount(labels).tolist() == [140] * 10
    assert np.bincount(labels[is_test]).tolist() == [30] * 10
    image = examples[0][0]
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    # Background colour varies within a class: the corners of one class's images differ.
    corners = np.array([img[0, 0] for img, label, _ in examples if label == 0], float)
    assert corners.std(0).min() > 30
  # The tuning folders hold different MNIST digits, so neither one's result leaks the other's.
  assert not glyphs_of["flat_digits"] & glyphs_of["gradient_digits"]
  # Every letter comes in each of the text faces.
  faces = collections.defaultdict(set)
  for char, font in letters_drawn:
    faces[char].add(font)
  every_face = dict.fromkeys(folders.LETTERS, len(folders.FACES))
  assert {char: len(fonts) for char, fonts in faces.items()} == every_face
