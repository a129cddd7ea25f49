r"""MoCo v3, ViT-Small/16, ImageNet (Chen, Xie & He 2021).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/moco_v3_vit_small.py --workdir=gs://BUCKET/moco_v3_vit_s \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 73.2% ImageNet linear top-1 after 300 epochs at batch 4096 (facebookresearch/moco-v3
CONFIG.md, ViT-Small; its linear protocol is SGD at lr 3 on the class token). The ViT-Base
recipe is configs/moco_v3_vit_base.py.

The official recipe (CONFIG.md, vits.py, moco/builder.py, main_moco.py): ViT-S/16 with 12
heads (MoCo v3's ViT-S; timm's has 6), fixed 2-D sin-cos position embeddings, a frozen random
patch projection (--stop-grad-conv1), xavier-uniform init with q, k and v initialised as
separate matrices, class token N(0, 1e-6); projection MLP 384 -> 4096 -> 4096 -> 256 and
prediction MLP 256 -> 4096 -> 256, both with BN in the hidden layers and an affine-free BN
on the output; temperature 0.2 and the loss scale 2 tau; key-encoder momentum 0.99 rising
to 1 on a cosine; AdamW (betas 0.9, 0.999) at 1.5e-4 x B/256 with weight decay 0.1 on every
trained parameter, biases and LayerNorms included, but not on the frozen projection; 40
warm-up epochs then a cosine to 0 over 300; BYOL's augmentations with crops from 8% of the
area (main_moco.py's default --crop-min for ViTs). The official run uses fp16 autocast;
--config.model.dtype=bfloat16 is the accelerator counterpart here.
"""
from jax_ssl.config import base_config, check_variant, shrink_vit_for_cpu


def moco_v3_vit(arch):
  """The MoCo v3 ViT recipe on `arch`; shared by the ViT-S and ViT-B files."""
  c = base_config("moco_v3")
  c.model.update(arch=arch, patch_size=16, image_size=224, num_heads=12, pos_embed="sincos",
                 frozen_patch_embed=True, weight_init="xavier", features="cls")
  c.moco_v3.update(temperature=0.2, momentum=0.99, proj_hidden_dims=(4096, 4096), proj_dim=256,
                   pred_hidden_dims=(4096,), pred_last_bn=True, scale_loss_by_2t=True)
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.data.image_size = 224
  c.data.augment.crop_area_min = 0.08
  c.train.batch_size = 4096
  c.train.num_epochs = 300
  c.train.warmup_epochs = 40
  c.optim.name = "adamw"
  c.optim.base_lr = 1.5e-4
  c.optim.lr_scaling = "linear"
  c.optim.base_batch_size = 256
  c.optim.weight_decay = 0.1
  c.optim.exclude_from_decay = False  # torch.optim.AdamW(model.parameters()) decays them all
  c.optim.groups.patch_embed.weight_decay = False  # frozen: out of the optimizer
  return c


def get_config(arg=None):
  c = moco_v3_vit("vit_small")
  if check_variant(arg) == "tiny":
    shrink_vit_for_cpu(c)
  return c
