r"""Relative patch position, ResNet-50, ImageNet (Doersch, Gupta & Efros 2015).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/relative_position_r50.py \
      --workdir=gs://BUCKET/relative_position \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: no published figure for this exact setting; the paper's networks are AlexNet-like, and
the MoCo paper's comparison lists relative position at 51.4% ImageNet linear top-1 with a
2x-wide ResNet-50 (Kolesnikov et al. 2019); a target, not measured with this file.

As the paper: a 432-pixel crop on a 3 x 3 grid of 144-pixel cells, the centre patch and one
of its 8 neighbours, 96-pixel patches with 48-pixel gaps and up to 7 pixels of jitter
(each patch off its cell's centre by up to 7 pixels), each patch's colour channels cut up
to 3 pixels apart and 30% of the patches grey against the chromatic shortcut; each patch through
the shared encoder and a 4,096-unit layer (fc6), the pair concatenated into a 4,096-unit
layer and the 8 positions. SGD with momentum 0.9 and weight decay 5e-4, lr 0.1 x batch/256
on a cosine.
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu
from jax_ssl.pretext import imagenet_recipe


def get_config(arg=None):
  c = base_config("relative_position")
  imagenet_recipe(c, num_epochs=90)
  c.data.views.patches.size = 432
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
