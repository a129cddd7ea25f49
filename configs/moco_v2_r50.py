r"""MoCo v2, ResNet-50, ImageNet (Chen, Fan, Girshick & He 2020).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/moco_v2_r50.py --workdir=gs://BUCKET/moco_v2 \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected ImageNet linear top-1: 67.5% after the default 200 epochs, 71.1%
after 800 (--config.train.num_epochs=800) (MoCo v2, Table 2). On CIFAR-10
with a ResNet-18, solo-learn reports 92.94% online linear top-1 for MoCo v2+
at 1000 epochs.

Key encoder: EMA with m = 0.999 of the query encoder, run with shuffle-BN; a
queue of 65,536 keys; temperature 0.2; 2-layer MLP head 2048 -> 128 without
BN; SGD with momentum 0.9, lr 0.03 x batch/256, weight decay 1e-4 on every
parameter (biases and BN included, as torch's SGD there),
cosine schedule without warm-up, batch 256; MoCo v2's augmentations (crop
from 20% of the area, colour jitter 0.4/0.4/0.4/0.1 with p = 0.8, grayscale
0.2, blur 0.5, flip). The query encoder's BN statistics are global here; the
official code's are per GPU (docs/fidelity.md lists what differs).
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu


def get_config(arg=None):
  c = base_config("moco_v2")
  c.model.arch = "resnet50"
  c.moco_v2.queue_size = 65_536
  c.moco_v2.temperature = 0.2
  c.moco_v2.momentum = 0.999
  c.moco_v2.proj_hidden_dims = (2048,)
  c.moco_v2.proj_dim = 128
  c.moco_v2.shuffle_bn = True
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.data.augment.crop_area_min = 0.2
  c.data.augment.color_strength = 0.5  # (0.4, 0.4, 0.4, 0.1)
  c.data.augment.blur_prob = 0.5
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
