r"""PIRL, ResNet-50, ImageNet (Misra & van der Maaten 2020, "Self-Supervised Learning of
Pretext-Invariant Representations").

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/pirl_r50.py --workdir=gs://BUCKET/pirl \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 63.6% ImageNet linear top-1 after the default 800 epochs at batch 1024 (PIRL,
Table 1 with the jigsaw pretext task).

As the official VISSL recipe (`pirl_jigsaw_4node_resnet50`): the image through the
ResNet-50 and a linear layer f to 128-d; each of the 9 jigsaw tiles through the same
ResNet-50 and a linear layer to 128-d, the tile features concatenated in their shuffled
order (1152-d) and a linear layer g to 128-d; a memory bank of f's features, momentum 0.5;
NCE against 32,000 noise rows drawn uniformly, temperature 0.07, one Z estimated at the
first step, lambda = 0.5; SGD with momentum 0.9, lr 0.03 x batch/256 (0.12 at 1024) on a
cosine to 1/1000 of it, weight decay 1e-4 except on biases and BN. Augmentations: crops
from 8% of the area for the image, colour jitter 0.4/0.4/0.4/0.2 always applied,
grayscale 0.2, flip.

Differences: the tiles are cut from one crop of the image (the jigsaw view's, from 60% of
the area) and share its colour augmentation (VISSL jitters each tile on its own and crops
it within its cell); the 32,000 noise rows are shared by the global batch at each step
(VISSL draws them per example).
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu


def get_config(arg=None):
  c = base_config("pirl")
  c.model.arch = "resnet50"
  c.pirl.dim = 128
  c.pirl.tile_dim = 128
  c.pirl.temperature = 0.07
  c.pirl.negatives = 32_000
  c.pirl.bank_momentum = 0.5
  c.pirl.weight = 0.5
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.data.image_size = 224
  c.data.views.jigsaw.size = 255  # 3 x 85-pixel tiles
  c.data.views.jigsaw.crop_area_min = 0.6
  c.data.augment.crop_area_min = 0.08
  c.data.augment.color_strength = 1.0
  c.data.augment.jitter = (0.4, 0.4, 0.4, 0.2)
  c.data.augment.color_prob = 1.0
  c.data.augment.grayscale_prob = 0.2
  c.data.augment.blur_prob = 0.0
  c.train.batch_size = 1024
  c.train.num_epochs = 800
  c.train.warmup_epochs = 0
  c.optim.name = "sgd"
  c.optim.base_lr = 0.03
  c.optim.final_lr_fraction = 0.001
  c.optim.weight_decay = 1e-4
  c.optim.momentum = 0.9
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
