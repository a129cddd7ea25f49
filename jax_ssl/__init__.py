"""Self-supervised visual representation learning in JAX and Flax.

Importing the package imports none of its dependencies; `torch_model` imports torch.
"""


def torch_model(path):
  """An exported ResNet encoder as a torch.nn.Module, weights and BN statistics loaded.

  `path` is a pretraining workdir or its export/ folder. The module has torchvision's
  ResNet structure and parameter names with `fc = Identity()`: it maps RGB images in
  [0, 1], [N, 3, H, W] float32, to pooled features [N, C]. It comes in eval mode.
  """
  from jax_ssl import torch_resnet  # noqa: PLC0415  (torch only for those who ask for it)
  return torch_resnet.from_export(path)
