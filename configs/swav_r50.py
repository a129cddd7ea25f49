r"""SwAV, ResNet-50, ImageNet, multi-crop (Caron et al. 2020).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/swav_r50.py --workdir=gs://BUCKET/swav \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 75.3% ImageNet linear top-1 after the default 800 epochs at batch
4096 with 2 x 224 + 6 x 96 crops (SwAV, Table 1). On CIFAR-10 with a
ResNet-18, solo-learn reports 89.17% online linear top-1 at 1000 epochs.

As the official 800-epoch script (facebookresearch/swav,
scripts/swav_800ep_pretrain.sh): 3,000 prototypes (a bias-free linear layer,
re-normalised after every step, frozen for the first epoch, then at the run's
learning rate); projection 2048 -> 2048 -> 128, its BN over every crop together;
temperature 0.1; codes from the two 224-pixel crops by Sinkhorn (epsilon 0.05, 3
iterations, over the global batch), each predicted from the 7 other crops; no queue
at batch 4096 (the small-batch scripts use 3,840 from epoch 15:
--config.swav.queue_size=3840 --config.swav.queue_start_epochs=15); SGD with
momentum 0.9 and weight decay 1e-6 inside apex's LARC (trust 0.001, clip=False) on
every parameter, biases and BN included; lr 4.8 at batch 4096 after a warm-up from
0.3 over 10 epochs, then a cosine to 0.0048. Crops: global from 14-100% of the area,
local from 5-14%; colour strength 1.0, blur 0.5 on every crop. docs/fidelity.md lists
what still differs.
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu


def get_config(arg=None):
  c = base_config("swav")
  c.model.arch = "resnet50"
  c.swav.num_prototypes = 3000
  c.swav.temperature = 0.1
  c.swav.epsilon = 0.05
  c.swav.sinkhorn_iters = 3
  c.swav.proj_hidden_dims = (2048,)
  c.swav.proj_dim = 128
  c.optim.groups.prototypes.frozen_epochs = 1
  c.swav.queue_size = 0  # the 800-epoch run at batch 4096 has none
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.data.augment.crop_area_min = 0.14
  c.data.views["global"].count = 2
  c.data.views.local.update(count=6, size=96, crop_area_min=0.05, crop_area_max=0.14)
  c.train.batch_size = 4096
  c.train.num_epochs = 800
  c.train.warmup_epochs = 10
  c.optim.name = "larc"
  c.optim.exclude_from_decay = False
  c.optim.exclude_from_trust_ratio = False
  c.optim.base_lr = 4.8
  c.optim.base_batch_size = 4096
  c.optim.warmup_start_fraction = 0.3 / 4.8
  c.optim.final_lr_fraction = 0.001
  c.optim.weight_decay = 1e-6
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
