"""Encoder export: orbax round trip, loading in a fresh process, and torch equality."""
import json
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from safetensors.numpy import load_file

import jax_ssl
from jax_ssl import config as config_lib, export, models


def model_config(arch, width, cifar_stem):
  c = config_lib.base_config("simclr")
  c.model.update(arch=arch, width_multiplier=width, cifar_stem=cifar_stem)
  c.data.image_size = 32
  return c


def trained_looking_variables(backbone, size, seed=0):
  """Initial weights with BN scales, offsets and statistics moved away from 1 and 0."""
  variables = backbone.init(jax.random.key(seed), jnp.zeros((1, size, size, 3)), train=False)
  leaves, tree = jax.tree.flatten(variables)
  rng = np.random.default_rng(seed)
  paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(variables)[0]]
  moved = []
  for path, leaf in zip(paths, leaves):
    noise = rng.normal(size=leaf.shape).astype(np.float32)
    if "'var'" in path:
      leaf = 0.5 + np.abs(noise)
    elif "'scale'" in path:
      leaf = 1.0 + 0.2 * noise
    elif "'mean'" in path or "'bias'" in path:
      leaf = 0.1 * noise
    moved.append(jnp.asarray(leaf, jnp.float32))
  return jax.tree.unflatten(tree, moved)


@pytest.mark.parametrize("arch,width,cifar_stem", [("resnet10", 0.125, True),
                                                   ("resnet50", 0.0625, False)])
def test_torch_resnet_from_the_safetensors_export_gives_the_same_features(
    tmp_path, arch, width, cifar_stem):
  torch = pytest.importorskip("torch")
  config = model_config(arch, width, cifar_stem)
  backbone = models.create_backbone(config.model)
  variables = trained_looking_variables(backbone, 32)
  export.export_encoder(variables, config, str(tmp_path), step=7)

  state = load_file(str(tmp_path / "export" / export.TORCH_FILE))
  assert state["conv1.weight"].shape[2:] == ((3, 3) if cifar_stem else (7, 7))
  assert "layer2.0.downsample.0.weight" in state and "layer2.0.downsample.1.running_var" in state
  assert state["bn1.num_batches_tracked"] == 7
  encoder = jax_ssl.torch_model(tmp_path)  # the workdir; its export/ folder works too
  assert not encoder.training and isinstance(encoder.fc, torch.nn.Identity)

  images = np.random.default_rng(1).uniform(size=(4, 32, 32, 3)).astype(np.float32)
  expected = np.asarray(backbone.apply(variables, images, train=False))
  with torch.no_grad():
    got = encoder(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
  assert got.shape == expected.shape == (4, models.backbone_feature_dim(config.model))
  assert np.abs(got - expected).max() < 1e-4
  assert np.abs(expected).max() > 0.1  # the comparison is not between zeros


def test_export_from_a_checkpoint_loads_in_a_fresh_process(tmp_path):
  """A pretraining workdir (config.json + checkpoint) -> export -> another process."""
  config = model_config("resnet10", 0.125, True)
  backbone = models.create_backbone(config.model)
  variables = trained_looking_variables(backbone, 32)
  (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
  manager = ocp.CheckpointManager(tmp_path / "checkpoints", item_names=("state",))
  state = {"params": {"backbone": variables["params"], "projector": {"w": jnp.ones(3)}},
           "batch_stats": {"backbone": variables["batch_stats"]}, "opt_state": jnp.zeros(2)}
  manager.save(5, args=ocp.args.Composite(state=ocp.args.StandardSave(state)))
  manager.wait_until_finished()
  images = np.random.default_rng(2).uniform(size=(3, 32, 32, 3)).astype(np.float32)
  np.save(tmp_path / "images.npy", images)

  script = textwrap.dedent(f"""
      import numpy as np
      from jax_ssl import export
      export.export_from_workdir({str(tmp_path)!r})
      backbone, variables, info = export.load_encoder({str(tmp_path)!r})
      images = np.load({str(tmp_path / 'images.npy')!r})
      np.save({str(tmp_path / 'features.npy')!r}, backbone.apply(variables, images, train=False))
      """)
  subprocess.run([sys.executable, "-c", script], check=True, timeout=300)

  info = export.read_info(str(tmp_path))
  assert info["model"]["arch"] == "resnet10" and info["step"] == 5 and info["feature_dim"] == 64
  expected = backbone.apply(variables, images, train=False)
  np.testing.assert_allclose(np.load(tmp_path / "features.npy"), expected, atol=1e-5)
  _, restored, _ = export.load_encoder(str(tmp_path / "export"))
  jax.tree.map(np.testing.assert_array_equal, restored, variables)


def test_load_rejects_a_missing_export_and_a_mismatched_architecture(tmp_path):
  with pytest.raises(FileNotFoundError, match="no exported encoder in"):
    export.load_encoder(str(tmp_path))
  with pytest.raises(FileNotFoundError, match="no config.json"):
    export.export_from_workdir(str(tmp_path))
  (tmp_path / "config.json").write_text(json.dumps(config_lib.base_config().to_dict()))
  with pytest.raises(FileNotFoundError, match="has no checkpoint in"):
    export.export_from_workdir(str(tmp_path))

  config = model_config("resnet10", 0.125, True)
  backbone = models.create_backbone(config.model)
  export.export_encoder(trained_looking_variables(backbone, 32), config, str(tmp_path), step=1)
  info_path = tmp_path / "export" / export.INFO_FILE
  info = json.loads(info_path.read_text())
  info["model"]["width_multiplier"] = 0.25  # the file now names another architecture
  info_path.write_text(json.dumps(info))
  with pytest.raises(ValueError, match=r"does not match.*\[.bn1.\]\[.mean.\] has shape \(8,\), "
                                       r"expected \(16,\)"):
    export.load_encoder(str(tmp_path))


def test_torch_names_follow_torchvision():
  assert export.torch_name("params", ("layer1_0", "conv1", "kernel")) == "layer1.0.conv1.weight"
  assert export.torch_name("params", ("layer3_1", "downsample_bn", "scale")) == \
      "layer3.1.downsample.1.weight"
  assert export.torch_name("batch_stats", ("bn1", "var")) == "bn1.running_var"
