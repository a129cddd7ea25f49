r"""MoCo v3, ViT-Base/16, ImageNet (Chen, Xie & He 2021).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/moco_v3_vit_base.py --workdir=gs://BUCKET/moco_v3_vit_b \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 76.7% ImageNet linear top-1 after 300 epochs at batch 4096 (facebookresearch/moco-v3
CONFIG.md, ViT-Base).

The recipe of configs/moco_v3_vit_small.py (which lists it) on ViT-B/16 (12 heads, width
768): the official ViT-B run changes nothing else.
"""
import importlib.util
import pathlib

from jax_ssl.config import check_variant, shrink_vit_for_cpu

_SMALL = pathlib.Path(__file__).with_name("moco_v3_vit_small.py")


def get_config(arg=None):
  spec = importlib.util.spec_from_file_location("moco_v3_vit_small", _SMALL)
  small = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(small)
  c = small.moco_v3_vit("vit_base")
  if check_variant(arg) == "tiny":
    shrink_vit_for_cpu(c)
  return c
