"""Exported ResNet encoders in PyTorch: torchvision's structure and names, in plain torch.

  import jax_ssl
  model = jax_ssl.torch_model("WORKDIR/export")   # or the pretraining WORKDIR itself
  features = model(images)                         # [N, 3, H, W] RGB in [0, 1] -> [N, C]

The module is torchvision.models.ResNet's (conv1, bn1, maxpool, layer1..layer4, avgpool,
fc) with `fc = Identity()`, so it returns pooled features; replace `fc` to classify. It is
written here rather than taken from torchvision so that it also covers what torchvision
lacks: ResNet-10 and -200, width multipliers, and the CIFAR stem (a 3x3 stride-1 conv1 and
no max-pool). The state dict has exactly the names and shapes that jax_ssl's export writes
to encoder.safetensors. Importing this module imports torch; `jax_ssl` itself does not.
"""
import json
import os

import torch
from torch import nn

STAGE_SIZES = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3),
               101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}
ARCHS = tuple(f"resnet{depth}" for depth in STAGE_SIZES)
# The names of jax_ssl.export's files; repeated here so that loading needs no JAX.
EXPORT_DIR, INFO_FILE = "export", "encoder.json"


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, inplanes, planes, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.downsample = downsample(inplanes, planes, stride)

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return torch.relu(y + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
  """ResNet v1.5: the stride sits on the 3x3 conv, as in torchvision and jax_ssl."""
  expansion = 4

  def __init__(self, inplanes, planes, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.downsample = downsample(inplanes, planes * 4, stride)

  def forward(self, x):
    y = torch.relu(self.bn1(self.conv1(x)))
    y = torch.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    return torch.relu(y + (self.downsample(x) if self.downsample is not None else x))


def downsample(inplanes, out_channels, stride):
  if stride == 1 and inplanes == out_channels:
    return None
  return nn.Sequential(nn.Conv2d(inplanes, out_channels, 1, stride, bias=False),
                       nn.BatchNorm2d(out_channels))


class TorchResNet(nn.Module):
  """torchvision.models.ResNet with fc = Identity, a width multiplier and the CIFAR stem.

  Widths round as jax_ssl's do (int(64 * 2**stage * width)); returns pooled features.
  """

  def __init__(self, block, layers, width=1.0, cifar_stem=False):
    super().__init__()
    base = int(64 * width)
    self.conv1 = (nn.Conv2d(3, base, 3, 1, 1, bias=False) if cifar_stem
                  else nn.Conv2d(3, base, 7, 2, 3, bias=False))
    self.bn1 = nn.BatchNorm2d(base)
    self.maxpool = nn.Identity() if cifar_stem else nn.MaxPool2d(3, 2, 1)
    inplanes = base
    for stage, blocks in enumerate(layers):
      planes = int(64 * 2**stage * width)
      stack = []
      for i in range(blocks):
        stack.append(block(inplanes, planes, 2 if stage > 0 and i == 0 else 1))
        inplanes = planes * block.expansion
      setattr(self, f"layer{stage + 1}", nn.Sequential(*stack))
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    self.fc = nn.Identity()
    self.feature_dim = inplanes
    for m in self.modules():  # torchvision's initialisation
      if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
      elif isinstance(m, nn.BatchNorm2d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)

  def forward(self, x):
    x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
    for stage in range(1, 5):
      x = getattr(self, f"layer{stage}")(x)
    return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet(arch, width=1.0, cifar_stem=False):
  """The ResNet named like jax_ssl's config.model.arch ('resnet10' ... 'resnet200')."""
  if arch not in ARCHS:
    raise ValueError(f"model {arch!r} is unknown; accepted: {list(ARCHS)}")
  depth = int(arch[len("resnet"):])
  block = Bottleneck if depth >= 50 else BasicBlock
  return TorchResNet(block, STAGE_SIZES[depth], width, cifar_stem)


# ------------------------------------------------------------------ load ----
def _gfile():
  import tensorflow as tf  # noqa: PLC0415  (only for gs:// and other remote paths)
  return tf.io.gfile


def _read(path):
  """The bytes of a local file, or of a remote (gs://...) one through tf.io.gfile."""
  if "://" not in path:
    with open(path, "rb") as f:
      return f.read()
  with _gfile().GFile(path, "rb") as f:
    return f.read()


def _exists(path):
  return os.path.exists(path) if "://" not in path else _gfile().exists(path)


def _export_folder(path):
  """`path` if it holds encoder.json, else `path`/export if that does; None otherwise."""
  path = os.fspath(path).rstrip("/")
  for folder in (path, f"{path}/{EXPORT_DIR}"):
    if _exists(f"{folder}/{INFO_FILE}"):
      return folder
  return None


def from_export(path):
  """The exported ResNet of `path` (an export folder or a pretraining workdir) in torch,
  in eval mode with the exported weights and BN statistics loaded (strictly)."""
  from safetensors.torch import load  # noqa: PLC0415

  folder = _export_folder(path)
  if folder is None:
    raise FileNotFoundError(f"no exported encoder in {path}: expected {path}/{INFO_FILE} or "
                            f"{path}/{EXPORT_DIR}/{INFO_FILE} (python -m jax_ssl.export "
                            "--workdir=WORKDIR writes them)")
  info = json.loads(_read(f"{folder}/{INFO_FILE}"))
  model_config = info["model"]
  if "timm" in info:
    raise ValueError(f"the encoder in {folder} is a {model_config['arch']}: load "
                     f"{info['torch_state_dict']} into timm's VisionTransformer"
                     f"(**{info['timm']['kwargs']})")
  if model_config["arch"] not in ARCHS or "torch_state_dict" not in info:
    raise ValueError(f"the encoder in {folder} is a {model_config['arch']}; only ResNets "
                     f"({', '.join(ARCHS)}) are exported for PyTorch")
  model = resnet(model_config["arch"], model_config["width_multiplier"],
                 model_config["cifar_stem"])
  model.load_state_dict(load(_read(f"{folder}/{info['torch_state_dict']}")), strict=True)
  return model.eval()
