r"""Jigsaw puzzles, ResNet-50, ImageNet (Noroozi & Favaro 2016).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/jigsaw_r50.py --workdir=gs://BUCKET/jigsaw \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 45.7% ImageNet linear top-1 for Jigsaw with a ResNet-50 (the figure the SwAV
paper's comparison table gives, from Goyal et al. 2019's ResNet-50 Jigsaw); a target, not
measured with this file.

As the paper: a 225-pixel crop cut into a 3 x 3 grid of 75-pixel cells, each tile a random
64-pixel square of its cell (gaps and jitter), tiles shuffled by one of 1,000 permutations
chosen greedily for large Hamming distances (`--config.data.views.puzzle.transform=
jigsaw:100` for the smaller set), each tile's colour channels cut up to 2 pixels apart and
30% of the tiles grey against the chromatic shortcut; each tile through the shared encoder and a
1,024-unit layer (fc6), the nine concatenated into a 4,096-unit layer and the 1,000
classes. SGD with momentum 0.9 and weight decay 5e-4, lr 0.1 x batch/256 on a cosine.
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu
from jax_ssl.pretext import imagenet_recipe


def get_config(arg=None):
  c = base_config("jigsaw")
  imagenet_recipe(c, num_epochs=90)
  c.data.views.puzzle.update(size=225, transform="jigsaw:1000")
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
