r"""Barlow Twins, ResNet-50, ImageNet (Zbontar, Jing, Misra, LeCun & Deny 2021).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/barlow_twins_r50.py --workdir=gs://BUCKET/barlow_twins \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 73.2% ImageNet linear top-1 after the default 1000 epochs at batch 2048
(Barlow Twins, Table 1). On CIFAR-10 with a ResNet-18, solo-learn reports 92.10% online
linear top-1 at 1000 epochs.

As the official code (facebookresearch/barlowtwins): ResNet-50 with each residual
block's last BN scale starting at zero; projector 2048 -> 8192 -> 8192 -> 8192, BN and
ReLU in the hidden layers, a bias-free output; lambda 0.0051; LARS (momentum 0.9, trust
coefficient 0.001) with weight decay 1.5e-6, biases and BN excluded from decay and
adaptation; learning rate 0.2 x batch/256 for weights and 0.0048 x batch/256 for biases
and BN parameters (the `biases` group, multiplier 0.024), 10 warm-up epochs, then a
cosine to 0.001 of the peak; BatchNorm over the global batch (SyncBN), each view its own
pass. BYOL's augmentations: colour jitter 0.4/0.4/0.2/0.1 with p = 0.8, grayscale 0.2,
blur 1.0 / 0.1 and solarize 0 / 0.2 for the two views.

One difference in the gradients: the official code sums the cross-correlation over GPUs
without differentiating through the sum and then averages gradients across GPUs, so its
gradients are the loss's divided by the number of GPUs. LARS rescales the weights' steps
anyway; the biases and BN parameters, which it does not adapt, take steps that many
times larger here than in the official runs.
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu


def get_config(arg=None):
  c = base_config("barlow_twins")
  c.model.arch = "resnet50"
  c.model.zero_init_last_bn = True
  c.barlow_twins.proj_hidden_dims = (8192, 8192)
  c.barlow_twins.proj_dim = 8192
  c.barlow_twins.lambd = 0.0051
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.train.batch_size = 2048
  c.train.num_epochs = 1000
  c.train.warmup_epochs = 10
  c.optim.name = "lars"
  c.optim.base_lr = 0.2
  c.optim.weight_decay = 1.5e-6
  c.optim.final_lr_fraction = 0.001
  c.optim.groups.biases.lr_multiplier = 0.0048 / 0.2
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
