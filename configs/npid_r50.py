r"""NPID, ResNet-50, ImageNet (Wu et al. 2018, "Unsupervised Feature Learning via
Non-Parametric Instance Discrimination").

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/npid_r50.py --workdir=gs://BUCKET/npid \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 54.0% ImageNet linear top-1 from the ResNet-50's conv5 features after the
default 200 epochs at batch 256 (NPID, Table 2).

As the official code (zhirongw/lemniscate.pytorch): a linear layer from the pooled
features to 128-d, normalised; a memory bank of 1.28M x 128 rows (here split over the
devices: 160k rows each on 8) updated with momentum 0.5; NCE with K = 4096 noise rows
drawn uniformly and temperature 0.07, Z estimated from the first batch and then fixed;
SGD with momentum 0.9, lr 0.03 at batch 256, weight decay 1e-4 on every parameter.
Augmentations: crops from 20% of the area, grayscale 0.2, colour jitter 0.4/0.4/0.4/0.4
always applied, flip, no blur.

Differences: the learning rate follows a cosine (the official code divides it by 10 at
epochs 120 and 160), and the K noise rows are shared by the global batch at each step
(the official code draws K per example).
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu


def get_config(arg=None):
  c = base_config("npid")
  c.model.arch = "resnet50"
  c.npid.dim = 128
  c.npid.temperature = 0.07
  c.npid.loss = "nce"
  c.npid.negatives = 4096
  c.npid.bank_momentum = 0.5
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.data.augment.crop_area_min = 0.2
  c.data.augment.color_strength = 1.0
  c.data.augment.jitter = (0.4, 0.4, 0.4, 0.4)
  c.data.augment.color_prob = 1.0
  c.data.augment.grayscale_prob = 0.2
  c.data.augment.blur_prob = 0.0
  c.data.views.view1.blur_prob = 0.0
  c.train.batch_size = 256
  c.train.num_epochs = 200
  c.train.warmup_epochs = 0
  c.optim.name = "sgd"
  c.optim.base_lr = 0.03
  c.optim.weight_decay = 1e-4
  c.optim.exclude_from_decay = False  # torch SGD decays every parameter
  c.optim.momentum = 0.9
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
