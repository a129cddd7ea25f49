r"""Fine-tuning a pretrained encoder with labels: all of them, or a labelled fraction.

  python main.py --config=configs/finetune.py --config.pretrained=/tmp/simclr_tiny \
      --workdir=/tmp/simclr_tiny_finetune --config.data.label_fraction=0.1

Semi-supervised ImageNet with the subsets TFDS names (the same 1% and 10% image lists
as SimCLR): --config.data.source=tfds:imagenet2012_subset/1pct
--config.data.test_split=validation. Any other --config.data.label_fraction draws a
class-balanced fraction of the training split, the same for the same config.seed.

The SimCLR fine-tuning recipe (Chen et al. 2020, appendix B.5): every layer trained,
BatchNorm in training mode, SGD with Nesterov momentum 0.9, learning rate
0.05 x B / 256, no warm-up, no weight decay, random crops and flips only; 60 epochs on
1% of the labels, 30 on 10%. The paper's batch is 4096; the default 256 keeps the same
learning rate per example. Reports finetune_top1 and finetune_top5 on the test split.
Data and model default to the pretraining run's, as in linear_eval.py.

Expected: ResNet-50 SimCLR, ImageNet: 48.3% top-1 with 1% of the labels, 65.6% with 10%
(SimCLR paper, Table 7).
"""
from jax_ssl.config import base_config, check_variant, inherit_unset


def get_config(arg=None):
  check_variant(arg)
  c = base_config()
  c.task = "finetune"
  c.model = inherit_unset(c.model)
  c.data = inherit_unset(c.data)
  c.data.label_fraction = 1.0
  c.train.batch_size = 256
  c.train.num_epochs = 30
  c.train.warmup_epochs = 0
  c.train.log_every_steps = 100
  c.optim.name = "sgd"
  c.optim.base_lr = 0.05
  c.optim.lr_scaling = "linear"
  c.optim.momentum = 0.9
  c.optim.nesterov = True
  c.optim.weight_decay = 0.0
  return c
