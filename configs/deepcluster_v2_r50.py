r"""DeepCluster v2, ResNet-50, ImageNet, multi-crop (Caron et al. 2020).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/deepcluster_v2_r50.py --workdir=gs://BUCKET/deepcluster_v2 \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: 75.2% ImageNet linear top-1 after 800 epochs at batch 4096 with 2 x 224 + 6 x 96
crops (the SwAV paper's DeepCluster v2, Table 3); a target, not measured with this file.

As the SwAV paper's DeepCluster v2: 3 heads of 3,000 prototypes, each reset every epoch
from spherical k-means (10 iterations) of the normalised projections, pseudo-labels kept
by example; projection 2048 -> 2048 -> 128; temperature 0.1; every crop predicts its
image's cluster in each head; LARS with base lr 4.8 at batch 4096, weight decay 1e-6, 10
warm-up epochs and a cosine to 0.0048. Crops: global from 14-100% of the area, local from
5-14%; colour strength 1.0, blur 0.5 on every crop. The projections clustered are those of
the un-augmented images at epoch start, not a memory bank of the previous epoch's crops.
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu


def get_config(arg=None):
  c = base_config("deepcluster_v2")
  c.model.arch = "resnet50"
  c.deepcluster_v2.update(num_prototypes=3000, num_heads=3, temperature=0.1,
                          proj_hidden_dims=(2048,), proj_dim=128)
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.data.augment.crop_area_min = 0.14
  c.data.views["global"].count = 2
  c.data.views.local.update(count=6, size=96, crop_area_min=0.05, crop_area_max=0.14)
  c.train.update(batch_size=4096, num_epochs=800, warmup_epochs=10)
  c.optim.update(name="lars", base_lr=4.8, base_batch_size=4096, final_lr_fraction=0.001,
                 weight_decay=1e-6)
  c.eval.max_train_examples = 100_000
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
