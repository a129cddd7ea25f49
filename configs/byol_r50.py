r"""BYOL, ResNet-50, ImageNet (Grill et al. 2020).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/byol_r50.py --workdir=gs://BUCKET/byol \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 74.3% ImageNet linear top-1 after the default 1000 epochs at
batch 4096 (BYOL, Table 1). On CIFAR-10 with a ResNet-18, solo-learn reports
92.58% online linear top-1 at 1000 epochs.

Online network: ResNet-50 with each residual block's last BN scale starting
at zero, projector 2048 -> 4096 -> 256 and predictor 256 -> 4096 -> 256 (BN
and ReLU in the hidden layer, no bias on the output). Target: EMA of encoder
and projector, tau from 0.996 to 1 on a cosine. Symmetric loss
2 - 2 cos. LARS with base lr 0.2 x batch/256, weight decay 1.5e-6, biases and
BN excluded from both; 10 warm-up epochs then cosine. BYOL's asymmetric
augmentations: colour jitter 0.4/0.4/0.2/0.1 with p = 0.8, grayscale 0.2,
blur p = 1.0 / 0.1 and solarize p = 0 / 0.2 for the two views. Brightness is
multiplicative here (SimCLR v2's form); BYOL's code adds an offset
(docs/fidelity.md lists what differs from deepmind-research/byol).
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu


def get_config(arg=None):
  c = base_config("byol")
  c.model.arch = "resnet50"
  c.model.zero_init_last_bn = True  # each residual block starts as the identity
  c.byol.tau_base = 0.996
  c.byol.proj_hidden_dims = (4096,)
  c.byol.proj_dim = 256
  c.byol.pred_hidden_dims = (4096,)
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.train.batch_size = 4096
  c.train.num_epochs = 1000
  c.train.warmup_epochs = 10
  c.optim.name = "lars"
  c.optim.base_lr = 0.2
  c.optim.weight_decay = 1.5e-6
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
