r"""DeepCluster (v1), ResNet-50, ImageNet (Caron et al. 2018).

Launch (ImageNet prepared as TFDS 'imagenet2012'):
  python main.py --config=configs/deepcluster_r50.py --workdir=gs://BUCKET/deepcluster \
      --config.data.data_dir=gs://BUCKET/tensorflow_datasets

Expected: the paper's figures are for AlexNet (about 41% ImageNet linear top-1 at its best
conv layer) and VGG-16; we know of no ResNet-50 figure for v1 that we could verify, so
none is given; not measured with this file. DeepCluster v2 (configs/deepcluster_v2_r50.py)
is the ResNet-50 recipe with a published figure.

As the paper: every epoch the pooled features of the whole training split are
PCA-whitened to 256 dimensions, l2-normalised and clustered into 10,000 clusters by
Euclidean k-means (20 iterations, random initial centroids, empty clusters re-seeded);
the classifier is re-initialised and trained to the clusters, each example weighted as
uniform sampling over clusters would draw it; crops and flips, no colour augmentation;
SGD with momentum 0.9 and weight decay 1e-5 (the paper's), lr 0.05 x batch/256 (the
paper's constant 0.05 at 256), here on a cosine over 100 epochs (the paper trains 500).
The paper's Sobel input filter is not applied.
"""
from jax_ssl.config import base_config, check_variant, shrink_for_cpu
from jax_ssl.pretext import imagenet_recipe


def get_config(arg=None):
  c = base_config("deepcluster")
  imagenet_recipe(c, num_epochs=100)
  c.data.augment.update(color_prob=0.0, grayscale_prob=0.0)
  c.optim.update(base_lr=0.05, weight_decay=1e-5)
  if check_variant(arg) == "tiny":
    shrink_for_cpu(c)
  return c
