r"""SimSiam, ResNet-50, ImageNet (Chen & He 2021).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/simsiam_r50.py --workdir=gs://BUCKET/simsiam \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 68.1% ImageNet linear top-1 after the default 100 epochs at batch 512 (SimSiam,
Table 4; the official README's 100-epoch model). On CIFAR-10 with a ResNet-18, solo-learn
reports 90.51% online linear top-1 at 1000 epochs.

As the official code (facebookresearch/simsiam): ResNet-50 with each residual block's
last BN scale starting at zero; projector 2048 -> 2048 -> 2048 with BN and ReLU in the
hidden layers and an affine-free BN on the output; predictor 2048 -> 512 -> 2048 with BN
and ReLU in its hidden layer; symmetric negative cosine with stop-gradient; SGD with
momentum 0.9, lr 0.05 x batch/256 on a cosine without warm-up, weight decay 1e-4 on every
parameter, biases and BN included; the predictor at the initial learning rate throughout
(`--fix-pred-lr`); BatchNorm over the global batch (SyncBN), each view its own pass.
Augmentations (MoCo v2's): crops from 20% of the area, colour jitter 0.4/0.4/0.4/0.1 with
p = 0.8, grayscale 0.2, blur 0.5, flip.
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu


def get_config(arg=None):
  c = base_config("simsiam")
  c.model.arch = "resnet50"
  c.model.zero_init_last_bn = True
  c.simsiam.proj_hidden_dims = (2048, 2048)
  c.simsiam.proj_dim = 2048
  c.simsiam.pred_hidden_dim = 512
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.data.augment.crop_area_min = 0.2
  c.data.augment.color_strength = 0.5  # (0.4, 0.4, 0.4, 0.1)
  c.data.augment.blur_prob = 0.5
  c.train.batch_size = 512
  c.train.num_epochs = 100
  c.train.warmup_epochs = 0
  c.optim.name = "sgd"
  c.optim.base_lr = 0.05
  c.optim.weight_decay = 1e-4
  c.optim.exclude_from_decay = False  # SGD, so no trust ratio to exclude from
  c.optim.momentum = 0.9
  c.optim.groups.predictor.constant_lr = True
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
