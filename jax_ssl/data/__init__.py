"""Data: image sources, views described as data, augmentations on the host (tf.data) and on
the devices (JAX).

Submodules load on first use, so describing views (`data.views`, which configs use) does
not start TensorFlow.
"""
import importlib

_SUBMODULES = ("augment", "builtin", "device", "labelled", "pipeline", "sources", "transforms",
               "views")
_NAMES = {
    "color_distortion": "augment", "color_jitter": "augment", "random_flip": "augment",
    "random_gaussian_blur": "augment", "random_grayscale": "augment",
    "random_resized_crop": "augment", "simclr_view": "augment",
    "eval_batches": "pipeline", "pretrain_batches": "pipeline",
    "make_source": "sources", "Source": "sources",
}


def __getattr__(name):
  if name in _SUBMODULES:
    return importlib.import_module(f"{__name__}.{name}")
  if name in _NAMES:
    return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
