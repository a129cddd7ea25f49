r"""SimCLR, ResNet-50, ImageNet: the paper's recipe (Chen et al. 2020, with v2's head).

Launch (TPU pod slice or GPU node, ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/simclr_r50.py --workdir=gs://BUCKET/simclr_r50 \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: about 64.5% ImageNet linear top-1 after the default 100 epochs at
batch 4096 (SimCLR, Chen et al. 2020, Fig. 9 / Table B.1: 100 epochs, batch
4096, ~6 hours on 32 TPU v3 cores); 69.3% after 1000 epochs
(--config.train.num_epochs=1000).

As the official code (google-research/simclr, tf2/): ResNet-50 with each residual block's
last BN scale starting at zero; LARS with base lr 0.3 x batch/256, weight decay 1e-6 and
neither applied to biases nor BN parameters; 10 warm-up epochs then cosine; temperature
0.1; 3-layer projection head with BN (SimCLR v2); BatchNorm statistics over the global
batch; crops covering at least 10% of the image. The objective is the official one, the
sum of both directions' means (`simclr.loss_scale=2`): twice `losses.nt_xent`, the
paper's mean over 2N anchors, so biases and BN parameters, which LARS does not adapt,
take the official steps. docs/fidelity.md lists what still differs.

`configs/simclr_r50.py:tiny` keeps the recipe but shrinks model, batch and
run length so it runs on a CPU in seconds, offline on the built-in digits
(for smoke tests; --config.data.source still chooses other data).
"""
from jax_ssl.config import base_config, shrink_for_cpu, check_variant


def get_config(arg=None):
  c = base_config("simclr")
  c.model.arch = "resnet50"
  c.model.zero_init_last_bn = True  # each residual block starts as the identity
  c.simclr.temperature = 0.1
  c.simclr.loss_scale = 2.0  # the official objective: both directions' means summed
  c.simclr.proj_hidden_dims = (2048, 2048)
  c.simclr.proj_dim = 128
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.data.image_size = 224
  c.data.augment.crop_area_min = 0.1  # crops cover at least 10% of the image
  c.data.augment.color_strength = 1.0
  c.data.augment.blur_prob = 0.5
  c.train.batch_size = 4096
  c.train.num_epochs = 100
  c.train.warmup_epochs = 10
  c.optim.name = "lars"
  c.optim.base_lr = 0.3
  c.optim.lr_scaling = "linear"
  c.optim.weight_decay = 1e-6
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c

