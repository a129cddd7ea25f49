"""Jigsaw puzzles (Noroozi & Favaro 2016): put 9 shuffled tiles of an image back in order.

Each image gives one crop cut into a 3 x 3 grid; each tile is a random square of its cell
(64 of 75 pixels in the paper), so tiles have gaps and jitter between them and their edges
do not line up; tiles are shuffled by one of P permutations, a fixed set chosen greedily for
large Hamming distances (`data.transforms.permutation_set`, P = 100 by default, the paper's
best transfer; 1,000 is its largest set). Each tile goes through the shared encoder and a
per-tile layer (the paper's fc6); the 9 outputs, concatenated in the shuffled order, go
through the classification head into P classes (which permutation), trained with
cross-entropy. Against the chromatic shortcut each tile's colour channels are cut up to 2
pixels per 64 of tile apart at random and 30% of the tiles are grey (the transform
`jigsaw:P`).

P is the transform's argument, `config.data.views.puzzle.transform='jigsaw:1000'`; the head
follows it.
"""
import ml_collections

from jax_ssl import config as config_lib, methods, pretext
from jax_ssl.data import transforms, views

GROUP = "puzzle"
PARTS = 9
MAX_PERMUTATIONS = 362880  # 9!


def config():
  return ml_collections.ConfigDict(dict(
      part_dim=1024,              # the per-tile layer (fc6) before the concatenation; 0: none
      head_hidden_dims=(4096,),   # the classifier on the concatenation (fc7), then P classes
  ))


def puzzle_views():
  return views.groups(**{GROUP: views.group(transform="jigsaw:100")})


def tiny(c):
  c.jigsaw.update(part_dim=32, head_hidden_dims=(128,))
  c.data.views[GROUP].size = None  # config.data.image_size


def num_permutations(c):
  _, _, argument = c.data.views[GROUP].transform.partition(":")
  return int(argument) if argument else transforms.TRANSFORMS["jigsaw"][2]


def check(c, num_devices):
  del num_devices
  pretext.check_head(c, "jigsaw")
  pretext.check_view(c, GROUP, "jigsaw")
  spec = c.data.views[GROUP].transform
  try:
    count = num_permutations(c)
  except ValueError:
    count = 0
  config_lib.require(2 <= count <= MAX_PERMUTATIONS, f"config.data.views.{GROUP}.transform",
                     spec, f"'jigsaw:P' with an integer 2 <= P <= 9! = {MAX_PERMUTATIONS}")


def create_model(c):
  return pretext.create_model(c, c.jigsaw, num_permutations(c), parts=PARTS)


def loss(params, state, batch, rng, run):
  return pretext.classify(params, state, run, batch[GROUP],
                          batch[f"{GROUP}_permutation_index"], rng)


METHOD = methods.register(methods.Method(
    name="jigsaw", config=config, views=puzzle_views, create_model=create_model, loss=loss,
    tiny=tiny, check=check, init_model=pretext.group_initialiser(GROUP)))
