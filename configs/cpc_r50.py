r"""CPC v2, ResNet-50, ImageNet (Henaff et al. 2020, "Data-Efficient Image Recognition
with Contrastive Predictive Coding").

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/cpc_r50.py --workdir=gs://BUCKET/cpc \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 63.8% ImageNet linear top-1 with a ResNet-50 (CPC v2 as listed in the PIRL and
SwAV comparisons; the NYU lecture notes in the seeds give the same figure). The paper's
headline, 71.5% top-1, is for its ResNet-161 (303M parameters, 4,096 features: the
Image GPT paper's comparison table); jax_ssl has no ResNet-161.

As the paper describes it: each image's crop is cut into a 7 x 7 grid of overlapping
patches at 50% overlap (`patches:7`: of the 240-pixel crops here, 60-pixel patches at
stride 30; 64-pixel patches at stride 32 need `--config.data.image_size=256`), each
patch encoded on its own and mean-pooled; a masked-convolution context network over the
grid, top to bottom; linear predictions of the patches up to K rows below; InfoNCE
against the other patches of the batch. Not checked against the paper here: the number
of rows predicted (K = 5 here), the context network's size (5 residual blocks of 512
channels here; the paper uses a PixelCNN), and the optimiser (Adam in the paper; here
the library's AdamW at lr 4e-4 x batch/256 without weight decay), so treat the
recipe's training settings as a starting point.

Differences: the encoder keeps batch normalisation (the paper uses layer normalisation,
so that patches of an image do not share statistics), and the patches share their
view's augmentation (the paper augments each patch on its own).
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu


def get_config(arg=None):
  c = base_config("cpc")
  c.model.arch = "resnet50"
  c.cpc.update(grid=7, steps=5, context_dim=512, context_layers=5, context_kernel=3)
  c.data.views.patches.transform = "patches:7"
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.data.image_size = 240
  c.data.augment.crop_area_min = 0.08
  c.data.augment.blur_prob = 0.0
  c.train.batch_size = 512
  c.train.num_epochs = 200
  c.train.warmup_epochs = 5
  c.optim.name = "adamw"
  c.optim.base_lr = 4e-4
  c.optim.weight_decay = 0.0
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
