r"""RotNet, ResNet-50, ImageNet (Gidaris, Singh & Komodakis 2018).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/rotnet_r50.py --workdir=gs://BUCKET/rotnet \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: about 48% ImageNet linear top-1 for rotation prediction with a ResNet-50, as
later comparisons report it (the paper's own ImageNet figures are for AlexNet); the figure
is a target, not measured with this file. The last layer of a rotation network is
specialised to the pretext task: Kolesnikov, Zhai & Beyer (2019) find the pre-logits of a
ResNet good for rotation, while for AlexNet-like networks the middle layers are better.

As the paper: each image in all four rotations in the same batch (256 images are 1,024
encoder passes), a crop of at least 8% of the area and a flip, no colour augmentation;
a linear head into 4 classes on the pooled features; SGD with momentum 0.9 and weight
decay 5e-4, here lr 0.1 x batch/256 on a cosine over 35 epochs after one warm-up epoch
(the paper steps its rate down by 5x three times).
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu
from jax_ssl.pretext import imagenet_recipe


def get_config(arg=None):
  c = base_config("rotnet")
  imagenet_recipe(c, num_epochs=35)
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
