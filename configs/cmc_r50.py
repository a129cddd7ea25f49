r"""CMC, ResNet-50 split into L and ab halves, ImageNet (Tian et al. 2020, "Contrastive
Multiview Coding").

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/cmc_r50.py --workdir=gs://BUCKET/cmc \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 64.1% ImageNet linear top-1 from the two encoders' features concatenated
(ResNet-50 x2 split into an L and an ab half, Tian et al. 2020, ImageNet table), the
figure this project's issue names; not checked against the paper's PDF here. Papers
with Code lists the ECCV 2020 version at 66.2% for "CMC (ResNet-50)", 47M parameters,
and 70.6% for "CMC (ResNet-50 x2)", 188M; those versions add RandAugment and differ in
training details.

As the paper and the official code (HobbitLong/CMC): each image is split into its L
channel and its ab channels, each through its own ResNet-50 of half of the x2 width
(here `model.width_multiplier=2.0`, `cmc.width_fraction=0.5`: a ResNet-50 x1 of 1 and
of 2 input channels), then a linear layer to 128-d, normalised; a memory bank per view
(1.28M x 128 each, split over the devices) with momentum 0.5; each view's anchors
against the other view's bank with 16,384 negatives (`train_CMC.py`'s default `--nce_k`;
its README says 4,096), NCE with Z estimated at the first step, temperature 0.07; crops from
8% of the area, flip, no colour augmentation (colour is a view); SGD with momentum 0.9,
lr 0.03 at batch 256 (the code's resnet50 runs use batch 128), weight decay 1e-4,
200 epochs.

Differences: the learning rate follows a cosine (the official code divides it by 10 at
epochs 120 and 160), and the negatives are shared by the global batch at each step (the
official code draws them per example, the same for both views, as here).
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu


def get_config(arg=None):
  c = base_config("cmc")
  c.model.arch = "resnet50"
  c.model.width_multiplier = 2.0  # halves of it per view: two ResNet-50 x1
  c.cmc.width_fraction = 0.5
  c.cmc.dim = 128
  c.cmc.temperature = 0.07
  c.cmc.loss = "nce"
  c.cmc.negatives = 16_384
  c.cmc.bank_momentum = 0.5
  c.cmc.objective = "core"
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.data.augment.crop_area_min = 0.08
  c.data.augment.color_prob = 0.0
  c.data.augment.grayscale_prob = 0.0
  c.data.augment.blur_prob = 0.0
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
