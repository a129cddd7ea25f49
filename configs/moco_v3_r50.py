r"""MoCo v3, ResNet-50, ImageNet (Chen, Xie & He 2021).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/moco_v3_r50.py --workdir=gs://BUCKET/moco_v3 \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 74.6% ImageNet linear top-1 with the 1000-epoch overrides below
(MoCo v3, ResNet-50). The default is the 100-epoch recipe (lr 0.6 x batch/256, weight decay 1e-6,
momentum 0.99). For 300 epochs: --config.train.num_epochs=300
--config.optim.base_lr=0.3. For 1000 epochs: --config.train.num_epochs=1000
--config.optim.base_lr=0.3 --config.optim.weight_decay=1.5e-6
--config.moco.momentum=0.996. The official 100-epoch figure is 68.9%.

ResNet-50 with each residual block's last BN scale starting at zero. No queue: the
negatives are the other keys of the global batch (4096), gathered across devices;
symmetric loss; projection MLP 2048 -> 4096 -> 256 and prediction MLP 256 -> 4096 -> 256,
BN in the hidden layers, an affine-free BN on the projection and no bias on the
prediction; key-encoder momentum rising from its base to 1 on a cosine; temperature 1.0
and the official loss scale 2 tau; LARS with biases and BN excluded, 10 warm-up epochs;
BYOL's asymmetric augmentations with crops from 20% of the area. docs/fidelity.md lists
what differs from facebookresearch/moco-v3.
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu


def get_config(arg=None):
  c = base_config("moco_v3")
  c.model.arch = "resnet50"
  c.model.zero_init_last_bn = True  # each residual block starts as the identity
  c.moco_v3.temperature = 1.0
  c.moco_v3.momentum = 0.99
  c.moco_v3.proj_hidden_dims = (4096,)
  c.moco_v3.proj_dim = 256
  c.moco_v3.pred_hidden_dims = (4096,)
  c.moco_v3.scale_loss_by_2t = True
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.data.augment.crop_area_min = 0.2
  c.train.batch_size = 4096
  c.train.num_epochs = 100
  c.train.warmup_epochs = 10
  c.optim.name = "lars"
  c.optim.base_lr = 0.6
  c.optim.weight_decay = 1e-6
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
