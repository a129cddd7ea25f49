"""CMC (Tian et al. 2020, "Contrastive Multiview Coding"): views are channel groups.

Each image is converted to a colour space by the view transform (`lab`, `tinted_lab` for
grey images, or `ydbdr`) and split into the channel groups that `views` names, by default
L and ab of Lab; ('L', 'a', 'b') or ('Y', 'Db', 'Dr') make three views. Each group has its
own encoder: a ResNet of `width_fraction` (a half, as the paper's L and ab halves) of
config.model's width taking that group's channels, and a linear layer to 128-d,
normalised. Each view keeps a memory bank of its features (jax_ssl/memory_bank.py,
sharded by rows over the devices, momentum 0.5). An anchor of one view is contrasted with
another view's bank: its positive is that bank's row of the same image, its negatives K
rows drawn uniformly, the same rows of every bank at a step (losses.cmc_loss), either by
NCE with Z estimated at the first step (`loss='nce'`, the official code's default) or by
the cross-entropy of the positive among the K + 1 rows (`loss='softmax'`, its
`--softmax`). The loss sums L(V_i, V_j) over the pairs of the objective: `core` (the first
view against each other) or `full_graph` (every pair); with two views they are the same.

The evaluation encoder takes RGB images, applies the training views' transform itself
(tinting included), splits the channels into the views and concatenates the view
encoders' pooled features; export writes each encoder.
"""
from typing import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from jax_ssl import config as config_lib, losses, memory_bank, methods, models
from jax_ssl.data import transforms, views as views_lib
from jax_ssl.methods import common

LOSSES = ("nce", "softmax")
# view transform -> (its target beside 'image', the channels of its colour space in order)
COLOUR_SPACES = {"lab": ("ab", ("L", "a", "b")),
                 "tinted_lab": ("ab", ("L", "a", "b")),
                 "ydbdr": ("dbdr", ("Y", "Db", "Dr"))}
VIEW_TRANSFORMS = tuple(COLOUR_SPACES)


def config():
  return ml_collections.ConfigDict(dict(
      views=("L", "ab"),    # channel groups of the view transform's colour space
      dim=128,              # each view's feature (its bank's columns)
      width_fraction=0.5,   # each view's encoder: this fraction of config.model's width
      temperature=0.07,
      loss="nce",           # 'nce' (Z kept from the first step) or 'softmax'
      negatives=16384,      # K rows of the other view's bank per anchor
      bank_momentum=0.5,    # m_i <- normalise(m * m_i + (1 - m) * v)
      objective="core",     # 'core' or 'full_graph' (the same for two views)
      head_bn=False,        # BatchNorm after each view's linear layer (not in the paper)
  ))


def views():
  return views_lib.groups(image=views_lib.group(transform="lab"))


# The views are the colour channels: no colour jitter or grayscale, which would blank ab.
AUGMENT = {"color_prob": 0.0, "grayscale_prob": 0.0}


def tiny(c):
  c.cmc.update(dim=32, negatives=256)


def channels_of(view, names):
  """The channel indices of a view's name in a colour space: 'ab' -> (1, 2) in Lab's
  ('L', 'a', 'b'), 'DbDr' -> (1, 2) in YDbDr's; None if the name is not made of them."""
  found, rest = [], view
  while rest:
    match = next((i for i, name in enumerate(names) if rest.startswith(name)), None)
    if match is None:
      return None
    found.append(match)
    rest = rest[len(names[match]):]
  return tuple(found) or None


def view_channels(c):
  """The channel indices of each of config.cmc.views."""
  names = COLOUR_SPACES[c.data.views.image.transform][1]
  return tuple(channels_of(view, names) for view in c.cmc.views)


def backbone_names(c):
  """The parameters' top-level name of each view's ResNet: 'l_backbone', 'ab_backbone'."""
  return tuple(f"{view.lower()}_backbone" for view in c.cmc.views)


def check(c, num_devices):
  del num_devices
  s = c.cmc
  for field in ("dim", "temperature", "negatives", "width_fraction"):
    config_lib.require(s[field] > 0, f"config.cmc.{field}", s[field], "> 0")
  config_lib.require(s.loss in LOSSES, "config.cmc.loss", s.loss, f"one of {LOSSES}")
  config_lib.require(s.objective in losses.CMC_OBJECTIVES, "config.cmc.objective",
                     s.objective, f"one of {losses.CMC_OBJECTIVES}")
  config_lib.require(0 <= s.bank_momentum < 1, "config.cmc.bank_momentum", s.bank_momentum,
                     "in [0, 1)")
  width = models.scaled_width(models.BASE_WIDTH, c.model.width_multiplier * s.width_fraction)
  config_lib.require(width >= 1, "config.cmc.width_fraction", s.width_fraction,
                     "a fraction of config.model.width_multiplier that leaves each view's "
                     "ResNet at least one channel")
  transform = c.data.views.image.transform if "image" in c.data.views else None
  config_lib.require(transform in VIEW_TRANSFORMS, "config.data.views.image.transform",
                     transform, f"one of {VIEW_TRANSFORMS} (CMC's colour spaces)")
  check_views(c)


def check_views(c):
  """Two or more views, each a group of the colour space's channels, no channel twice."""
  views, names = tuple(c.cmc.views), COLOUR_SPACES[c.data.views.image.transform][1]
  groups = view_channels(c)
  used = [i for group in groups if group for i in group]
  config_lib.require(
      len(views) >= 2 and None not in groups and len(used) == len(set(used)),
      "config.cmc.views", views, f"two or more groups of the channels {names} of "
      f"config.data.views.image.transform={c.data.views.image.transform!r}, each channel in "
      "one group at most, such as ('L', 'ab') or ('L', 'a', 'b')")


def view_backbone(c):
  """One view's ResNet: config.model at `width_fraction` of its width."""
  model = ml_collections.ConfigDict(c.model.to_dict())
  model.width_multiplier = c.model.width_multiplier * c.cmc.width_fraction
  return models.create_backbone(model)


def split_views(c, colour_image):
  """[B, S, S, 3] in the colour space -> one [B, S, S, channels] array per view."""
  return tuple(colour_image[..., list(group)] for group in view_channels(c))


def chroma_target(c):
  """The view transform's target beside 'image': 'ab' of Lab, 'dbdr' of YDbDr."""
  return COLOUR_SPACES[c.data.views.image.transform][0]


def colour_image(c, batch):
  """The batch's view in its colour space, [B, S, S, 3]: the transform's image (L, Y) and
  its other target (ab, DbDr) side by side."""
  return jnp.concatenate([batch["image"], batch[f"image_{chroma_target(c)}"]], axis=-1)


def converted(c, images):
  """RGB images [B, S, S, 3] -> the colour space, as the training views' transform makes
  it (it draws nothing at random, so it applies to the batch as a whole)."""
  out = transforms.parse(c.data.views.image.transform)(images.astype(jnp.float32), None)
  return jnp.concatenate([out["image"], out[chroma_target(c)]], axis=-1)


class CMCModel(nn.Module):
  """An encoder and a linear layer to the feature for each view."""
  backbone: nn.Module  # one view's ResNet, copied for each view with its own parameters
  head: nn.Module
  names: Sequence[str]  # the views' lower-case names: 'l', 'ab'

  @nn.compact
  def __call__(self, views, train: bool):
    """(the encoders' pooled features concatenated [B, M C], M features [B, dim])."""
    pooled, features = [], []
    for name, view in zip(self.names, views):
      h = self.backbone.clone(parent=self, name=f"{name}_backbone")(view, train=train)
      pooled.append(h)
      features.append(self.head.clone(parent=self, name=f"{name}_head")(h, train=train))
    return jnp.concatenate(pooled, axis=-1), tuple(features)


class CMCEncoder(nn.Module):
  """The evaluation encoder: RGB images -> the views -> their encoders, concatenated."""
  backbone: nn.Module
  names: Sequence[str]
  to_views: Callable  # RGB images -> the views, as in training

  @nn.compact
  def __call__(self, images, train: bool):
    return jnp.concatenate([
        self.backbone.clone(parent=self, name=f"{name}_backbone")(view, train=train)
        for name, view in zip(self.names, self.to_views(images))], axis=-1)


def names_of(c):
  return tuple(view.lower() for view in c.cmc.views)


def create_model(c):
  head = common.mlp_head(c, (), c.cmc.dim, use_bn=c.cmc.head_bn, last_bn=True)
  return CMCModel(view_backbone(c), head, names_of(c))


def encoder(c):
  names = backbone_names(c)
  return methods.Encoder(
      module=CMCEncoder(view_backbone(c), names_of(c),
                        lambda images: split_views(c, converted(c, images))),
      variables=lambda params, stats: {
          "params": {k: params[k] for k in names},
          "batch_stats": {k: stats.get(k, {}) for k in names}})


def init_model(run, rng, batch):
  return run.model.init(rng, split_views(run.config, colour_image(run.config, batch)),
                        train=False)


def init_state(run, variables, batch):
  del variables, batch
  c = run.config
  count = len(c.cmc.views)
  return {"bank": {view: memory_bank.bank_for(run, c.cmc.dim) for view in c.cmc.views},
          "normalizer": jnp.zeros((count, count), jnp.float32)}


def kept_normalizers(run, anchors, positives, negatives, stored):
  """Z of each anchor view against each other view's bank: `stored`, or at the first step
  the estimate from this batch (memory_bank.kept_normalizer), one per ordered pair."""
  s = run.config.cmc
  count = len(anchors)
  return jnp.stack([jnp.stack([
      stored[a, b] if a == b else memory_bank.kept_normalizer(
          run, anchors[a], positives[b], negatives[b], stored[a, b], s.temperature)
      for b in range(count)]) for a in range(count)])


def view_metrics(c, anchors, positives):
  """Each view's embedding std (the first's plain, the others' prefixed by their name)
  and the first view's mean cosine with the second view's bank rows."""
  out = {"embedding_std": losses.embedding_std(anchors[0])}
  for view, v in zip(c.cmc.views[1:], anchors[1:]):
    out[f"{view.lower()}_embedding_std"] = losses.embedding_std(v)
  out["cross_view_similarity"] = memory_bank.mean_similarity(anchors[0], positives[1])
  return out


def loss(params, state, batch, rng, run):
  c, s = run.config, run.config.cmc
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, anchors = forward(split_views(c, colour_image(c, batch)))
  index = batch["index"]
  banks = [state["method_state"]["bank"][view] for view in s.views]
  negative_rows = memory_bank.draw_negatives(c.seed, state["step"], run.num_train,
                                             s.negatives)
  positives = tuple(memory_bank.read(bank, index) for bank in banks)
  negatives = tuple(memory_bank.read(bank, negative_rows) for bank in banks)
  normalizer = state["method_state"]["normalizer"]
  if s.loss == "nce":
    normalizer = kept_normalizers(run, anchors, positives, negatives, normalizer)
  value = common.global_loss(
      run, losses.cmc_loss, anchors, positives, replicated=(negatives,),
      temperature=s.temperature, objective=s.objective, num_examples=run.num_train,
      normalizers=normalizer if s.loss == "nce" else None)
  method_state = {
      "bank": {view: memory_bank.ema_write(bank, index, v, s.bank_momentum)
               for view, bank, v in zip(s.views, banks, anchors)},
      "normalizer": normalizer}
  return methods.LossResult(value, view_metrics(c, anchors, positives), forward.batch_stats,
                            method_state, features)


METHOD = methods.register(methods.Method(
    name="cmc", config=config, views=views, create_model=create_model, loss=loss, tiny=tiny,
    check=check, augment=AUGMENT, init_model=init_model, init_state=init_state,
    state_sharding=memory_bank.STATE_SHARDING, encoder=encoder))
