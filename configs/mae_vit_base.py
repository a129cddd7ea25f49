r"""MAE, ViT-Base/16, ImageNet (He, Chen, Xie, Li, Dollar & Girshick 2022).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/mae_vit_base.py --workdir=gs://BUCKET/mae_vit_b \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 68.0% ImageNet linear top-1 and 83.6% fine-tuned after 1600 epochs at batch 4096
(He et al. 2022, Table 3 and section 4; facebookresearch/mae FINETUNE.md and LINPROBE.md).
ViT-L/16 with the same recipe (--config.model.arch=vit_large) reaches 75.8% linear and
85.9% fine-tuned.

The official recipe (PRETRAIN.md, main_pretrain.py, models_mae.py): 75% of the 196
patches hidden per example; the encoder on the rest and the class token; decoder 512
wide, 8 blocks, 16 heads; per-patch normalised pixel targets (--norm_pix_loss); fixed 2-D
sin-cos position embeddings; xavier-uniform linear layers and patch projection; crops
from 20% of the area, flipped, no colour; AdamW (betas 0.9, 0.95) at 1.5e-4 x B/256 with
weight decay 0.05 on every parameter of two or more dimensions (the class and mask
tokens included, biases and LayerNorms not); 40 warm-up epochs then a cosine to 0. No
stochastic depth in pretraining.

Not followed: the official runs use fp16 autocast (--config.model.dtype=bfloat16 here on
accelerators); the class token starts at N(0, 1e-6) here, N(0, 0.02) there.
"""
from jax_ssl.config import base_config, check_variant, shrink_vit_for_cpu


def mae_vit(arch):
  """The MAE recipe on `arch` (vit_base, vit_large)."""
  c = base_config("mae")
  c.model.update(arch=arch, patch_size=16, image_size=224, pos_embed="sincos",
                 weight_init="xavier", features="cls", drop_path_rate=0.0)
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.data.image_size = 224
  c.data.augment.flip = True
  c.train.batch_size = 4096
  c.train.num_epochs = 1600
  c.train.warmup_epochs = 40
  c.optim.update(name="adamw", base_lr=1.5e-4, lr_scaling="linear", base_batch_size=256,
                 weight_decay=0.05, adam_beta2=0.95, exclude_from_decay=True)
  return c


def get_config(arg=None):
  c = mae_vit("vit_base")
  if check_variant(arg) == "tiny":
    shrink_vit_for_cpu(c)
  return c
