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

`finetune.py:mae` is MAE's ViT recipe (He et al. 2022, appendix A.3; FINETUNE.md,
main_finetune.py, util/lr_decay.py): AdamW (betas 0.9, 0.999) at 5e-4 x B / 256 with
batch 1024, weight decay 0.05, layer-wise learning-rate decay 0.65 (ViT-B; 0.75 for
ViT-L), 5 warm-up epochs then a cosine over 100. MAE ViT-B/16: 83.6% top-1. Not
included: its stochastic depth 0.1, RandAugment, mixup 0.8, cutmix 1.0, label smoothing
0.1 and random erasing 0.25; and it keeps the class and position tokens out of weight
decay, which here take it as every parameter of two or more dimensions does.
"""
from jax_ssl.config import labelled_task_config


def get_config(arg=None):
  if arg not in (None, "", "mae"):
    raise ValueError(f"config argument {arg!r} is unknown; expected nothing or ':mae'")
  if arg == "mae":
    c = labelled_task_config("finetune", base_lr=5e-4, num_epochs=100)
    c.train.update(batch_size=1024, warmup_epochs=5)
    c.optim.update(name="adamw", weight_decay=0.05, layer_decay=0.65)
    return c
  return labelled_task_config("finetune", base_lr=0.05, num_epochs=30)
