r"""VICReg, ResNet-50, ImageNet (Bardes, Ponce & LeCun 2022).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/vicreg_r50.py --workdir=gs://BUCKET/vicreg \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 73.2% ImageNet linear top-1 after the default 1000 epochs at batch 2048
(VICReg, Table 1). On CIFAR-10 with a ResNet-18, solo-learn reports 92.07% online linear
top-1 at 1000 epochs.

As the official code (facebookresearch/vicreg): ResNet-50 with each residual block's
last BN scale starting at zero; expander 2048 -> 8192 -> 8192 -> 8192, BN and ReLU in the
hidden layers, a bias-free output; invariance 25, variance 25 (a hinge on the standard
deviation at 1, eps 1e-4), covariance 1, all over the global batch (with B - 1); LARS
(momentum 0.9, trust coefficient 0.001) with lr 0.2 x batch/256, weight decay 1e-6,
biases and BN excluded from decay and adaptation, 10 warm-up epochs, then a cosine to 0.001
of the peak; BatchNorm over the global batch (SyncBN), each view its own pass. BYOL's
augmentations: colour jitter 0.4/0.4/0.2/0.1 with p = 0.8, grayscale 0.2, blur 1.0 / 0.1
and solarize 0 / 0.2 for the two views.
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu


def get_config(arg=None):
  c = base_config("vicreg")
  c.model.arch = "resnet50"
  c.model.zero_init_last_bn = True
  c.vicreg.proj_hidden_dims = (8192, 8192)
  c.vicreg.proj_dim = 8192
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.train.batch_size = 2048
  c.train.num_epochs = 1000
  c.train.warmup_epochs = 10
  c.optim.name = "lars"
  c.optim.base_lr = 0.2
  c.optim.weight_decay = 1e-6
  c.optim.final_lr_fraction = 0.001
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
