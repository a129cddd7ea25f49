r"""Colorization, ResNet-50, ImageNet (Zhang, Isola & Efros 2016).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/colorization_r50.py --workdir=gs://BUCKET/colorization \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: about 39.6% ImageNet linear top-1 for a ResNet-50 trained to colorize, as the
SwAV paper's table reports it (Caron et al. 2020, Table 1, citing Zhang et al. 2016; the
paper's own ImageNet figures are for AlexNet and VGG); a target, not measured with this
file.

As the paper: the L channel of a 224-pixel crop (and a flip) in, no colour augmentation;
a per-pixel distribution over the in-gamut ab bins (10 wide; 262 here, the paper's 313)
predicted at 56 x 56, soft-encoded targets (5 nearest bins, sigma 5), class rebalancing
with lambda 0.5 and a prior smoothed by a Gaussian of sigma 5; decoder of three transposed
convs (256, 128, 64) from the 7 x 7 map. The prior is a running average over the batches
(see jax_ssl/methods/colorization.py). SGD with momentum 0.9 and weight decay 5e-4, lr
0.1 x batch/256 on a cosine over 14 epochs after one warm-up epoch (the paper trains
450k iterations of batch 40 with Adam, about 14 epochs).
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu
from jax_ssl.pretext import imagenet_recipe


def get_config(arg=None):
  c = base_config("colorization")
  imagenet_recipe(c, num_epochs=14)
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
