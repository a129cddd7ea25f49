r"""Inpainting (context encoder), ResNet-50, ImageNet (Pathak et al. 2016).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/inpainting_r50.py --workdir=gs://BUCKET/inpainting \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: no published ResNet-50 ImageNet linear figure is known to us. Later comparisons
of AlexNet features (e.g. the DeepCluster and split-brain papers' tables) put context
encoders well below colorization and far below the contrastive methods, around 20% at
their best layer; this is from memory and not verified, and not measured with this file.

As the paper: 128-pixel views, the central 64 x 64 region (a quarter of the area) filled
with grey, reconstructed under an L2 loss on the region alone; a decoder of five 4x4
transposed convs (512 to 32 channels) from the 4 x 4 map back to 128 pixels. Not here:
the adversarial term and the overlapping border (see jax_ssl/methods/inpainting.py). For a
random region, set both --config.inpainting.region=random and
--config.data.views.masked.transform=mask:0.25. SGD with momentum 0.9 and weight decay
5e-4, lr 0.1 x batch/256 on a cosine over 35 epochs after one warm-up epoch (the paper
trains with Adam).
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu
from jax_ssl.pretext import imagenet_recipe


def get_config(arg=None):
  c = base_config("inpainting")
  imagenet_recipe(c, num_epochs=35)
  c.data.image_size = 128
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
