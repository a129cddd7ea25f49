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


# ------------------------------------------------------------------ ViTs ----
def torch_vit_class(torch):
  """timm's VisionTransformer (class token, pre-norm blocks, fused qkv, no classifier) in
  plain torch, with timm's module names; written here so the test needs no timm."""
  nn = torch.nn

  class Attention(nn.Module):
    def __init__(self, dim, heads):
      super().__init__()
      self.heads = heads
      self.qkv = nn.Linear(dim, 3 * dim)
      self.proj = nn.Linear(dim, dim)

    def forward(self, x):
      batch, tokens, dim = x.shape
      qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads)
      q, k, v = qkv.permute(2, 0, 3, 1, 4)
      attn = (q @ k.transpose(-2, -1) * (dim // self.heads) ** -0.5).softmax(dim=-1)
      return self.proj((attn @ v).transpose(1, 2).reshape(batch, tokens, dim))

  class Mlp(nn.Module):
    def __init__(self, dim):
      super().__init__()
      self.fc1, self.act, self.fc2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)

    def forward(self, x):
      return self.fc2(self.act(self.fc1(x)))

  class Block(nn.Module):
    def __init__(self, dim, heads):
      super().__init__()
      self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads)
      self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), Mlp(dim)

    def forward(self, x):
      x = x + self.attn(self.norm1(x))
      return x + self.mlp(self.norm2(x))

  class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
      super().__init__()
      self.proj = nn.Conv2d(3, dim, patch, patch)

  class VisionTransformer(nn.Module):
    def __init__(self, img_size, patch_size, embed_dim, depth, num_heads, num_classes):
      super().__init__()
      assert num_classes == 0
      self.patch_embed = PatchEmbed(patch_size, embed_dim)
      self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
      self.pos_embed = nn.Parameter(torch.zeros(1, 1 + (img_size // patch_size) ** 2, embed_dim))
      self.blocks = nn.Sequential(*[Block(embed_dim, num_heads) for _ in range(depth)])
      self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

    def forward(self, images):
      x = self.patch_embed.proj(images).flatten(2).transpose(1, 2)
      x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
      return self.norm(self.blocks(x))[:, 0]

  return VisionTransformer


@pytest.mark.parametrize("overrides", [
    dict(pos_embed="learned", weight_init="trunc_normal"),
    dict(pos_embed="sincos", weight_init="xavier", num_heads=12),  # MoCo v3's ViT-S heads
])
def test_vit_export_loads_into_timm_structure_and_gives_the_same_features(tmp_path, overrides):
  torch = pytest.importorskip("torch")
  config = config_lib.base_config("simclr")
  config.model.update(arch="vit_tiny", patch_size=8, image_size=32, **overrides)
  config.data.image_size = 32
  backbone = models.create_backbone(config.model)
  variables = trained_looking_variables(backbone, 32)
  export.export_encoder(variables, config, str(tmp_path), step=3)

  info = json.loads((tmp_path / "export" / export.INFO_FILE).read_text())
  assert info["timm"]["name"] == "vit_tiny_patch8_224"
  state = {k: torch.from_numpy(v) for k, v in
           load_file(str(tmp_path / "export" / export.TORCH_FILE)).items()}
  assert state["blocks.11.attn.qkv.weight"].shape == (576, 192)
  assert state["pos_embed"].shape == (1, 17, 192)
  model = torch_vit_class(torch)(**info["timm"]["kwargs"])
  model.load_state_dict(state, strict=True)
  model.eval()
  with pytest.raises(ValueError, match="timm's VisionTransformer"):
    jax_ssl.torch_model(tmp_path)

  images = np.random.default_rng(1).uniform(size=(4, 32, 32, 3)).astype(np.float32)
  expected = np.asarray(jax.jit(lambda v, x: backbone.apply(v, x, train=False))(variables, images))
  with torch.no_grad():
    got = model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
  assert got.shape == expected.shape == (4, 192)
  assert np.abs(got - expected).max() < 1e-4
  assert np.abs(expected).max() > 0.1


def test_timm_names():
  assert export.timm_name(("blocks_11", "attn", "qkv", "kernel")) == "blocks.11.attn.qkv.weight"
  assert export.timm_name(("blocks_0", "norm1", "scale")) == "blocks.0.norm1.weight"
  assert export.timm_name(("patch_embed", "proj", "bias")) == "patch_embed.proj.bias"
  assert export.timm_name(("cls_token",)) == "cls_token"
  assert export.timm_name(("norm", "scale")) == "norm.weight"
