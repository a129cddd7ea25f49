"""PIRL (Misra & van der Maaten 2020): pretext-invariant representations from jigsaw tiles.

Two views of each image I: the whole image v_I, and a jigsaw view v_It, the image cut
into a 3 x 3 grid of tiles in a random order (the view transform `tiles:3`). The image
goes through the encoder and f, a linear layer to 128-d. Each tile goes through the same
encoder on its own and a linear layer; the nine tile features, concatenated in their
shuffled order, go through g, a linear layer to 128-d. The memory bank
(jax_ssl/memory_bank.py) holds m_I, an exponential moving average of f(v_I) (momentum
0.5), and the loss is lambda * NCE(m_I, g(v_It)) + (1 - lambda) * NCE(m_I, f(v_I)) with
lambda = 0.5, both against the same K noise rows drawn uniformly from the bank at each
step (losses.pirl_loss; one Z for both terms, estimated from the jigsaw term at the first
step, as the official VISSL code does). `loss='infonce'` makes each term the cross-entropy
of the positive among the K + 1 rows instead (VISSL's `loss_type: cross_entropy`).

The tiles share their view's crop and colour augmentation; the paper's pipeline also
jitters each tile on its own. The evaluation encoder is the backbone.
"""
import flax.linen as nn
import ml_collections

from jax_ssl import config as config_lib, losses, memory_bank, methods, models
from jax_ssl.data import views as views_lib
from jax_ssl.methods import common

LOSSES = ("nce", "infonce")


def config():
  return ml_collections.ConfigDict(dict(
      dim=128,            # f's and g's output, the bank's columns
      tile_dim=128,       # each tile's feature before g (the official jigsaw head's)
      grid=3,             # the jigsaw view is grid x grid tiles
      temperature=0.07,
      loss="nce",         # 'nce' (the paper's) or 'infonce' (cross-entropy over K + 1 rows)
      negatives=32000,    # K noise rows from the bank at each step
      bank_momentum=0.5,  # m_I <- normalise(m * m_I + (1 - m) * f(v_I))
      weight=0.5,         # lambda, the jigsaw term's share of the loss
  ))


def views():
  return views_lib.groups(image=views_lib.group(), jigsaw=views_lib.group(transform="tiles:3"))


def tiny(c):
  c.pirl.update(dim=32, tile_dim=16, negatives=256)
  c.data.views.jigsaw.size = None  # tiles of a third of config.data.image_size


def check(c, num_devices):
  del num_devices
  s = c.pirl
  for field in ("dim", "tile_dim", "temperature", "negatives"):
    config_lib.require(s[field] > 0, f"config.pirl.{field}", s[field], "> 0")
  config_lib.require(s.loss in LOSSES, "config.pirl.loss", s.loss, f"one of {LOSSES}")
  config_lib.require(s.grid >= 2, "config.pirl.grid", s.grid, ">= 2")
  config_lib.require(0 <= s.bank_momentum < 1, "config.pirl.bank_momentum", s.bank_momentum,
                     "in [0, 1)")
  config_lib.require(0 <= s.weight <= 1, "config.pirl.weight", s.weight, "in [0, 1]")
  transform = c.data.views.jigsaw.transform if "jigsaw" in c.data.views else None
  config_lib.require(transform == f"tiles:{s.grid}", "config.data.views.jigsaw.transform",
                     transform, f"'tiles:{s.grid}' (config.pirl.grid)")


class PIRLModel(nn.Module):
  """The encoder, f for whole images, and g over the encoded tiles of a jigsaw view."""
  backbone: nn.Module
  f: nn.Module
  tile_head: nn.Module
  g: nn.Module

  def __call__(self, x, train: bool):
    """(encoder features, f) of whole images [B, S, S, C]."""
    features = self.backbone(x, train=train)
    return features, self.f(features, train=train)

  def jigsaw(self, tiles, train: bool):
    """g of jigsaw views [B, grid^2, t, t, C]: every tile encoded on its own, the tile
    features concatenated in the views' (shuffled) order."""
    batch, count = tiles.shape[:2]
    encoded = self.backbone(tiles.reshape((batch * count,) + tiles.shape[2:]), train=train)
    per_tile = self.tile_head(encoded, train=train)
    return self.g(per_tile.reshape(batch, count * per_tile.shape[-1]), train=train)

  def both(self, images, tiles, train: bool):
    return self(images, train=train) + (self.jigsaw(tiles, train=train),)


def create_model(c):
  s = c.pirl

  def linear(dim):
    return common.mlp_head(c, (), dim, use_bn=False)

  return PIRLModel(models.create_backbone(c.model), linear(s.dim), linear(s.tile_dim),
                   linear(s.dim))


def init_model(run, rng, batch):
  return run.model.init(rng, batch["image"], batch["jigsaw"], train=False,
                        method=PIRLModel.both)


def loss(params, state, batch, rng, run):
  s = run.config.pirl
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, f = forward(batch["image"])
  g = forward(batch["jigsaw"], method=PIRLModel.jigsaw)
  index = batch["index"]
  bank, positives, negatives = memory_bank.step_rows(run, state["method_state"], index,
                                                     state["step"], s.negatives)
  normalizer = state["method_state"]["normalizer"]
  if s.loss == "nce":
    normalizer = memory_bank.kept_normalizer(run, g, positives, negatives, normalizer,
                                             s.temperature)
  value = common.global_loss(run, losses.pirl_loss, f, g, positives, replicated=(negatives,),
                             temperature=s.temperature, num_examples=run.num_train,
                             weight=s.weight, normalizer=normalizer if s.loss == "nce" else None)
  method_state = {"bank": memory_bank.ema_write(bank, index, f, s.bank_momentum),
                  "normalizer": normalizer}
  metrics = {"embedding_std": losses.embedding_std(f),
             "positive_similarity": memory_bank.mean_similarity(f, positives),
             "jigsaw_similarity": memory_bank.mean_similarity(g, positives)}
  return methods.LossResult(value, metrics, forward.batch_stats, method_state, features)


METHOD = methods.register(methods.Method(
    name="pirl", config=config, views=views, create_model=create_model, loss=loss, tiny=tiny,
    check=check, init_model=init_model, init_state=memory_bank.init_state_of("pirl"),
    state_sharding=memory_bank.STATE_SHARDING))
