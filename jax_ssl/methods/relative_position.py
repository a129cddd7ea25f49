"""Relative position (Doersch, Gupta & Efros 2015): where a patch sits beside the centre one.

Each image gives one crop on a 3 x 3 grid; the centre patch and one of its 8 neighbours,
each 2/3 of its cell and a little off the cell's centre (the paper's 96-pixel patches with
48-pixel gaps and up to 7 pixels of jitter), go through the shared encoder and a per-patch
layer (the paper's fc6); the two outputs, concatenated, go through the classification head
into the 8 positions, trained with cross-entropy. Against the chromatic shortcut each
patch's colour channels are cut up to 2 pixels per 64 of patch apart at random and 30% of
the patches are grey (the transform `relative_position`).
"""
import ml_collections

from jax_ssl import methods, pretext
from jax_ssl.data import transforms, views

GROUP = "patches"


def config():
  return ml_collections.ConfigDict(dict(
      part_dim=4096,              # the per-patch layer (fc6) before the concatenation; 0: none
      head_hidden_dims=(4096,),   # the classifier on the pair (fc7, fc8), then 8 classes
  ))


def patch_views():
  return views.groups(**{GROUP: views.group(transform="relative_position")})


def tiny(c):
  c.relative_position.update(part_dim=32, head_hidden_dims=(128,))
  c.data.views[GROUP].size = None  # config.data.image_size


def check(c, num_devices):
  del num_devices
  pretext.check_head(c, "relative_position")
  pretext.check_view(c, GROUP, "relative_position")


def create_model(c):
  return pretext.create_model(c, c.relative_position, len(transforms.NEIGHBOURS), parts=2)


def loss(params, state, batch, rng, run):
  return pretext.classify(params, state, run, batch[GROUP], batch[f"{GROUP}_neighbour"],
                          rng)


METHOD = methods.register(methods.Method(
    name="relative_position", config=config, views=patch_views, create_model=create_model,
    loss=loss, tiny=tiny, check=check, init_model=pretext.group_initialiser(GROUP)))
