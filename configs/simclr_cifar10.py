r"""SimCLR, ResNet-18 with the CIFAR stem, CIFAR-10.

Launch (CIFAR-10 prepared as TFDS 'cifar10'; one GPU is enough):
  python main.py --config=configs/simclr_cifar10.py --workdir=/tmp/simclr_cifar10

Expected: about 90-91% linear top-1 on the CIFAR-10 test set after 1000
epochs (solo-learn reports 90.74 online linear top-1 for SimCLR, ResNet-18,
1000 epochs; its recipe differs in batch 256 and a 2048-256 head). The
SimCLR paper's CIFAR-10 recipe uses colour strength 0.5 and no blur, as here.

ResNet-18 with a 3x3 stride-1 stem and no max-pool; batch 512; LARS with
base lr 0.4 x batch/256 and weight decay 1e-5 on weights only; temperature 0.2;
2-layer projection head 2048 -> 256; 10 warm-up epochs then cosine.

`configs/simclr_cifar10.py:tiny` is the same recipe shrunk for a CPU, on the built-in
digits unless --config.data.source says otherwise.
"""
from jax_ssl.config import base_config, shrink_for_cpu, check_variant


def get_config(arg=None):
  c = base_config("simclr")
  c.model.arch = "resnet18"
  c.model.cifar_stem = True
  c.simclr.temperature = 0.2
  c.simclr.proj_hidden_dims = (2048,)
  c.simclr.proj_dim = 256
  c.data.source = "tfds:cifar10"
  c.data.image_size = 32
  c.data.augment.color_strength = 0.5
  c.data.augment.blur_prob = 0.0
  c.train.batch_size = 512
  c.train.num_epochs = 1000
  c.train.warmup_epochs = 10
  c.train.checkpoint_every_steps = 2000
  c.optim.name = "lars"
  c.optim.base_lr = 0.4
  c.optim.weight_decay = 1e-5
  c.eval.every_epochs = 100
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
