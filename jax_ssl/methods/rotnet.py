"""RotNet (Gidaris, Singh & Komodakis 2018): predict which of 4 rotations an image shows.

Every image is in the batch in all four of its rotations (0, 90, 180, 270 degrees), the
paper's finding that this beats one random rotation per image; the encoder's features of
each rotated image go through a classification head into 4 classes, trained with
cross-entropy. The view is one crop of each image (transform `rotations`), so a batch of
B images is 4B encoder passes, normalised together by BatchNorm. No colour augmentation:
the paper's only augmentations are the crop and the flip.
"""
import ml_collections

from jax_ssl import methods, pretext
from jax_ssl.data import views

GROUP = "rotated"
NUM_ROTATIONS = 4


def config():
  return ml_collections.ConfigDict(dict(
      head_hidden_dims=(),  # the classification head's hidden layers; () is a linear head
  ))


def rotation_views():
  return views.groups(**{GROUP: views.group(transform="rotations", color_prob=0.0,
                                            grayscale_prob=0.0)})


def tiny(c):
  c.rotnet.head_hidden_dims = ()


def check(c, num_devices):
  del num_devices
  pretext.check_head(c, "rotnet")
  pretext.check_view(c, GROUP, "rotations")


def create_model(c):
  return pretext.create_model(c, c.rotnet, NUM_ROTATIONS)


def loss(params, state, batch, rng, run):
  images = batch[GROUP]  # [B, 4, S, S, 3]: each image in its four rotations
  return pretext.classify(
      params, state, run, images, batch[f"{GROUP}_rotation"], rng,
      example_features=lambda f: f.reshape((images.shape[0], NUM_ROTATIONS, -1))[:, 0])


METHOD = methods.register(methods.Method(
    name="rotnet", config=config, views=rotation_views, create_model=create_model, loss=loss,
    tiny=tiny, check=check, init_model=pretext.group_initialiser(GROUP)))
