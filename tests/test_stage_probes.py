"""The linear probe on each ResNet stage (config.eval.probe_layers): pooled stage features,
and their figures in a pretraining run and in the fast linear evaluation."""
import jax
import numpy as np
import pytest
from test_train import REPO, load_config, tiny_config

from jax_ssl import config as config_lib, methods, metrics, models, supervised, train

STAGES = ("layer1", "layer2", "layer3", "layer4")


def tiny_model(arch, **overrides):
  c = config_lib.base_config("colorization")
  c.model.update(arch=arch, width_multiplier=0.125, cifar_stem=True, **overrides)
  return c


@pytest.mark.parametrize("arch, widths", [("resnet10", (8, 16, 32, 64)),
                                          ("resnet18", (8, 16, 32, 64)),
                                          ("resnet50", (32, 64, 128, 256))])
def test_each_stage_is_its_last_block_pooled(arch, widths):
  backbone = models.create_backbone(tiny_model(arch).model)
  images = jax.random.uniform(jax.random.key(1), (3, 16, 16, 3))
  variables = backbone.init(jax.random.key(0), images, train=False)
  stages = models.stage_features(backbone, variables, images)
  assert {k: v.shape for k, v in stages.items()} == {s: (3, w) for s, w in zip(STAGES, widths)}
  # ResNet-18's stages have two blocks: the second one's output is the stage's.
  np.testing.assert_allclose(stages["layer4"], backbone.apply(variables, images, train=False),
                             rtol=1e-6)


def test_an_encoder_of_two_resnets_concatenates_their_stages():
  c = config_lib.base_config("cmc")
  config_lib.use_tiny_digits(c)
  encoder = methods.get("cmc").encoder(c)
  images = jax.random.uniform(jax.random.key(1), (2, 28, 28, 3))
  variables = encoder.module.init(jax.random.key(0), images, train=False)
  stages = models.stage_features(encoder.module, variables, images)
  assert [v.shape for v in stages.values()] == [(2, 8), (2, 16), (2, 32), (2, 64)]
  np.testing.assert_allclose(stages["layer4"], encoder.module.apply(variables, images,
                                                                    train=False), rtol=1e-6)


def stage_figures(results, prefix=""):
  return {s: results[f"{prefix}linear_top1_{s}"] for s in STAGES}


@pytest.fixture(scope="module")
def pretrained_with_stages(digit_folder, tmp_path_factory):
  config = tiny_config(f"folder:{digit_folder}", max_steps=2)
  config.eval.update(probe_layers=True, linear_epochs=5)
  workdir = tmp_path_factory.mktemp("stages")
  return train.train_and_evaluate(config, str(workdir)), workdir


def test_a_pretraining_run_writes_each_stage_for_both_encoders(pretrained_with_stages, capsys):
  results, workdir = pretrained_with_stages
  written = {k: v for r in metrics.read_metrics(workdir) for k, v in r.items()}
  for prefix in ("", "baseline_"):
    figures = stage_figures(written, prefix)
    assert all(0 <= v <= 1 for v in figures.values())
    # The last stage pooled is the encoder's output: the same features, the same probe.
    assert figures["layer4"] == written[f"{prefix}linear_top1"]
  metrics.print_summary(results, str(workdir), 1.0, exported=True)
  summary = capsys.readouterr().out
  assert (f"linear_top1    {results['linear_top1']:.3f}   (random init "
          f"{results['baseline_linear_top1']:.3f})\n    layer1       "
          f"{results['linear_top1_layer1']:.3f}   (random init "
          f"{results['baseline_linear_top1_layer1']:.3f})") in summary
  assert summary.index("layer4") < summary.index("knn_top1")


def test_the_fast_linear_evaluation_probes_each_stage(pretrained_with_stages, tmp_path):
  _, workdir = pretrained_with_stages
  config = load_config([f"--config={REPO / 'configs/linear_eval.py'}:fast",
                        f"--config.pretrained={workdir}", "--config.eval.baseline=True",
                        "--config.eval.probe_layers=True", "--config.eval.linear_epochs=5",
                        "--config.eval.batch_size=32"])
  results = supervised.run(config, str(tmp_path))
  assert stage_figures(results)["layer4"] == results["linear_top1"]
  assert stage_figures(results, "baseline_")["layer4"] == results["baseline_linear_top1"]
  written = metrics.read_metrics(tmp_path)[-1]
  assert stage_figures(written) == stage_figures(results)


def test_fine_tuning_refuses_probe_layers():
  config = tiny_model("resnet10")
  config.update(task="finetune", pretrained="/a/workdir")
  config.eval.probe_layers = True
  with pytest.raises(ValueError, match=r"config.eval.probe_layers=True is invalid: expected "
                                       "False with config.task='finetune'"):
    config_lib.validate(config, num_devices=1)
