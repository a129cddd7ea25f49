"""Data: image sources, augmentations on the host (tf.data) and on the devices (JAX)."""
from jax_ssl.data import device
from jax_ssl.data import pipeline
from jax_ssl.data.augment import color_distortion
from jax_ssl.data.augment import color_jitter
from jax_ssl.data.augment import random_flip
from jax_ssl.data.augment import random_gaussian_blur
from jax_ssl.data.augment import random_grayscale
from jax_ssl.data.augment import random_resized_crop
from jax_ssl.data.augment import simclr_view
from jax_ssl.data.pipeline import eval_batches
from jax_ssl.data.pipeline import pretrain_batches
from jax_ssl.data.sources import make_source
from jax_ssl.data.sources import Source
