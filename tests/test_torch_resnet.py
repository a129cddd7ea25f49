"""jax_ssl.torch_model: exported ResNets in PyTorch with torchvision's names and structure.

That its features equal the JAX encoder's is tested through an export in test_export.py.
"""
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_ssl
from jax_ssl import config as config_lib, export, models

torch = pytest.importorskip("torch")  # the test extra's CPU build
from jax_ssl import torch_resnet  # noqa: E402  (imports torch)


@pytest.mark.parametrize("arch,cifar_stem", [("resnet18", True), ("resnet50", False)])
def test_parameter_names_and_shapes_are_torchvisions_as_export_writes_them(arch, cifar_stem):
  width = 1 / 16
  c = config_lib.base_config()
  c.model.update(arch=arch, width_multiplier=width, cifar_stem=cifar_stem)
  backbone = models.create_backbone(c.model)
  variables = jax.eval_shape(lambda: backbone.init(jax.random.key(0),
                                                   jnp.zeros((1, 16, 16, 3)), train=False))
  zeros = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), variables)
  expected = {k: v.shape for k, v in export.torch_state_dict(zeros).items()}

  model = torch_resnet.resnet(arch, width, cifar_stem)
  got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
  assert got == expected
  assert model.feature_dim == models.backbone_feature_dim(c.model)
  for name in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight",
               "layer2.0.downsample.0.weight", "layer2.1.bn2.num_batches_tracked"):
    assert name in got
  assert not any(k.startswith("fc.") for k in got)
  assert ("layer1.0.conv3.weight" in got) == (arch == "resnet50")  # Bottleneck vs BasicBlock
  # torchvision's modules, in torchvision's order, with fc = Identity (pooled features).
  assert [name for name, _ in model.named_children()] == [
      "conv1", "bn1", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
  assert isinstance(model.fc, torch.nn.Identity)


def test_importing_jax_ssl_imports_neither_torch_nor_jax():
  script = "import sys, jax_ssl; print(sorted({'torch', 'jax', 'tensorflow'} & set(sys.modules)))"
  out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                       timeout=60).stdout
  assert out.strip() == "[]"


def test_torch_model_takes_the_export_folder_and_names_a_missing_one(pretrained_workdir,
                                                                       tmp_path):
  model = jax_ssl.torch_model(f"{pretrained_workdir}/{export.EXPORT_DIR}/")
  info = export.read_info(pretrained_workdir)
  with torch.no_grad():
    features = model(torch.rand(2, 3, 16, 16))
  assert features.shape == (2, info["feature_dim"]) and not model.training
  with pytest.raises(FileNotFoundError, match=f"no exported encoder in {tmp_path}"):
    jax_ssl.torch_model(tmp_path)
