"""Every config file loads and validates; bad configs fail with the field named."""
import pathlib

import pytest
from ml_collections import config_flags

from jax_ssl import config as config_lib, methods, models
from jax_ssl.data import sources

CONFIG_DIR = pathlib.Path(__file__).resolve().parent.parent / "configs"
CONFIG_FILES = sorted(CONFIG_DIR.glob("*.py"))


def load(path, arg=None):
  module = config_flags.config_flags._LoadConfigModule(path.stem, str(path))  # noqa: SLF001
  return module.get_config(arg)


def test_there_are_configs():
  assert {"simclr_r50.py", "simclr_cifar10.py", "simclr_tiny.py"} <= {p.name for p in CONFIG_FILES}


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.stem)
def test_config_loads_validates_and_documents_its_launch(path):
  config = load(path)
  if config.task != "pretrain":  # the unset data and model fields come from the pretraining run
    config_lib.fill_unset(config, config_lib.base_config())
    config.pretrained = "/runs/pretrained"
  config_lib.validate(config, num_devices=8)
  doc = path.read_text()
  assert f"--config=configs/{path.name}" in doc and "Expected" in doc


def _has_tiny_variant(path):
  return any(f"{shrink}(c)" in path.read_text() for shrink in ("shrink_for_cpu",
                                                                "shrink_vit_for_cpu"))


@pytest.mark.parametrize("path", [p for p in CONFIG_FILES if _has_tiny_variant(p)],
                         ids=lambda p: p.stem)
def test_tiny_variant_shrinks_the_recipe_and_runs_offline(path):
  full, tiny = load(path), load(path, "tiny")
  config_lib.validate(tiny, num_devices=8)
  assert tiny.train.batch_size < full.train.batch_size
  assert tiny.method == full.method
  assert tiny.model.arch == ("vit_tiny" if models.is_vit(full.model) else "resnet10")
  # The built-in digits: no dataset to prepare, nothing to download.
  assert tiny.data.source == "builtin:mnist"
  assert sources.make_source(tiny.data).num_train == 4000
  method_section = tiny[tiny.method]
  widths = [v for v in method_section.values()  # not names, such as CMC's views
            if isinstance(v, tuple) and all(isinstance(x, (int, float)) for x in v)]
  assert all(max(v, default=0) <= 256 for v in widths)


def test_every_method_has_a_recipe_and_a_tiny_config():
  stems = {p.stem for p in CONFIG_FILES}
  for name in methods.names():
    # A ResNet-50 recipe, or a ViT one for a method that needs patches (MAE).
    assert any(s.startswith(name) and s.endswith(("_r50", "_vit_base")) for s in stems), name
  configured = {load(p).method for p in CONFIG_FILES if p.stem.endswith("_tiny")}
  assert set(methods.names()) - configured <= {"moco_v3"}  # moco_v3_r50.py:tiny is its tiny run


def test_base_config_holds_only_the_chosen_method():
  c = config_lib.base_config("simsiam")
  assert "simsiam" in c and not any(name in c for name in methods.names() if name != "simsiam")
  assert sorted(c.data.views.keys()) == ["view1", "view2"]
  assert c.optim.groups.predictor.constant_lr
  assert "simclr" not in config_lib.base_config() and not config_lib.base_config().data.views


def test_a_config_of_another_method_is_refused_before_anything_is_built():
  c = _tiny()
  c.method = "byol"
  with pytest.raises(ValueError, match=r"config.method='byol' does not match the config's "
                                       r"method section \['simclr'\]"):
    config_lib.validate(c, num_devices=8)


def test_view_groups_are_checked_field_by_field():
  c = _tiny()
  c.data.views.view2.solarize_prob = 1.5
  with pytest.raises(ValueError, match=r"config.data.views.view2.solarize_prob=1.5"):
    config_lib.validate(c, num_devices=8)
  c = _tiny()
  c.data.views.view1.transform = "spin"
  with pytest.raises(ValueError, match=r"config.data.views.view1.transform='spin'"):
    config_lib.validate(c, num_devices=8)
  for field, value, accepted in [("highpass_prob", 1.5, r"in \[0, 1\]"),
                                 ("highpass_sigma", 0.0, "> 0"),
                                 ("lighting_prob", -0.1, r"in \[0, 1\]"),
                                 ("lighting_strength", 0.0, "> 0")]:
    c = _tiny()
    c.data.augment[field] = value
    with pytest.raises(ValueError, match=rf"config.data.augment.{field}={value} must be "
                                         rf"{accepted}"):
      config_lib.validate(c, num_devices=8)


def test_simclr_r50_is_the_paper_recipe():
  c = load(CONFIG_DIR / "simclr_r50.py")
  assert (c.model.arch, c.train.batch_size, c.train.num_epochs, c.train.warmup_epochs) == (
      "resnet50", 4096, 100, 10)
  assert (c.optim.name, c.optim.base_lr, c.optim.lr_scaling, c.optim.weight_decay) == (
      "lars", 0.3, "linear", 1e-6)
  assert c.simclr.temperature == 0.1 and len(c.simclr.proj_hidden_dims) == 2
  assert c.simclr.proj_last_bn
  # As the official code: its loss (both directions summed), crops of at least 10%.
  assert c.simclr.loss_scale == 2.0 and c.data.augment.crop_area_min == 0.1


def test_unknown_variant_is_rejected():
  with pytest.raises(ValueError, match="config argument 'huge'"):
    load(CONFIG_DIR / "simclr_tiny.py", "huge")


def _tiny():
  return load(CONFIG_DIR / "simclr_tiny.py")


@pytest.mark.parametrize("mutate,match", [
    (lambda c: c.train.__setattr__("batch_sise", 3), r"unknown config field\(s\): config.train.batch_sise \(did you mean config.train.batch_size\?\)"),
    (lambda c: c.__setattr__("method", "simclrr"), r"config.method='simclrr'"),
    (lambda c: c.model.__setattr__("arch", "resnet51"), r"config.model.arch='resnet51'"),
    (lambda c: c.model.__setattr__("dtype", "float16"), r"config.model.dtype='float16'"),
    (lambda c: c.data.__setattr__("source", "imagenet"), r"config.data.source='imagenet'"),
    (lambda c: c.train.__setattr__("batch_size", 100), r"config.train.batch_size=100 .*multiple of the device count 8"),
    (lambda c: c.optim.__setattr__("lr_scaling", "cubic"), r"config.optim.lr_scaling='cubic'"),
    (lambda c: c.optim.__setattr__("warmup_start_fraction", 1.5),
     r"config.optim.warmup_start_fraction=1.5"),
    (lambda c: c.train.__setattr__("warmup_epochs", 500), r"config.train.warmup_epochs=500"),
    (lambda c: c.train.__setattr__("warmup_steps", 3000),
     r"config.train.warmup_steps=3000 .*at most num_steps=2500"),
    (lambda c: c.train.__setattr__("num_steps", -1), r"config.train.num_steps=-1"),
    (lambda c: c.eval.__setattr__("batch_size", 12), r"config.eval.batch_size=12"),
    (lambda c: c.__setattr__("task", "eval"), r"config.task='eval'"),
    (lambda c: c.__setattr__("task", "finetune"), r"config.pretrained='' .*workdir of a pretraining run"),
    (lambda c: c.data.__setattr__("label_fraction", 0.0), r"config.data.label_fraction=0.0"),
    (lambda c: c.data.__setattr__("on_bad_file", "warn"),
     r"config.data.on_bad_file='warn' .*one of \('skip', 'error'\)"),
    (lambda c: c.eval.__setattr__("linear_mode", "slow"), r"config.eval.linear_mode='slow'"),
    (lambda c: c.eval.__setattr__("online_probe_lr", 0.0), r"config.eval.online_probe_lr=0.0"),
    # Weight decay would shrink the frozen projection, and SimCLR has no group to exempt it.
    (lambda c: c.model.update(arch="vit_tiny", patch_size=4, frozen_patch_embed=True),
     r"config.model.frozen_patch_embed=True is invalid: expected False for simclr, which "
     r"declares no patch_embed parameter group"),
])
def test_bad_config_names_the_field(mutate, match):
  c = _tiny()
  mutate(c)
  with pytest.raises(ValueError, match=match):
    config_lib.validate(c, num_devices=8)


@pytest.mark.parametrize("name,mutate,match", [
    ("rotnet_tiny", lambda c: c.data.views.rotated.__setattr__("transform", "rotate"),
     r"config.data.views.rotated=.*'transform': 'rotate'.* is invalid: expected one view "
     r"\(count=1\) with transform='rotations'"),
    ("jigsaw_tiny", lambda c: c.data.views.puzzle.__setattr__("transform", "jigsaw:1"),
     r"config.data.views.puzzle.transform='jigsaw:1' is invalid: expected 'jigsaw:P' with an "
     r"integer 2 <= P <= 9! = 362880"),
    ("relative_position_tiny", lambda c: c.relative_position.__setattr__("part_dim", -1),
     r"config.relative_position.part_dim=-1 is invalid"),
    ("rotnet_tiny", lambda c: c.rotnet.__setattr__("head_hidden_dims", (0,)),
     r"config.rotnet.head_hidden_dims=\(0,\) is invalid: expected positive integers"),

    # Decoupled weight decay would shrink a frozen patch projection: both ViT recipes that
    # freeze it keep it out of decay, and a config that puts it back is refused.
    *[(name, lambda c: c.optim.groups.patch_embed.__setattr__("weight_decay", True),
       r"config.optim.groups.patch_embed.weight_decay=True is invalid: expected False while "
       r"config.model.frozen_patch_embed=True") for name in ("moco_v3_vit_tiny", "dino_tiny")],
])
def test_pretext_methods_name_a_bad_field(name, mutate, match):
  c = load(CONFIG_DIR / f"{name}.py")
  mutate(c)
  with pytest.raises(ValueError, match=match) as error:
    config_lib.validate(c, num_devices=8)
  assert "\n" not in str(error.value)  # one line
