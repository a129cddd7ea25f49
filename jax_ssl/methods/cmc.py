"""CMC (Tian et al. 2020, "Contrastive Multiview Coding"): views are channel groups.

Each image is split into its L and ab channels of the Lab colour space (the view transform
`lab`, or `tinted_lab` for grey images), and each group has its own encoder: a ResNet of
`width_fraction` (a half) of config.model's width, taking 1 (L) or 2 (ab) channels, and
a linear layer to 128-d, normalised. Each view keeps a memory bank of its features
(jax_ssl/memory_bank.py, sharded by rows over the devices, momentum 0.5). An anchor of one
view is contrasted with the other view's bank: its positive is that bank's row of the
same image, its negatives K rows drawn uniformly, the same rows of every bank at a step
(losses.cmc_loss), either by NCE with Z estimated at the first step (`loss='nce'`, the
official code's default) or by the cross-entropy of the positive among the K + 1 rows
(`loss='softmax'`, its `--softmax`). The loss sums L(V_i, V_j) over the pairs of the
objective: `core` (the first view against each other) or `full_graph` (every pair); with
the two views of Lab they are the same.

The evaluation encoder takes RGB images, converts them to Lab itself and concatenates the
view encoders' pooled features; export writes both encoders.
"""
import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from jax_ssl import config as config_lib, losses, memory_bank, methods, models
from jax_ssl.data import transforms, views as views_lib
from jax_ssl.methods import common

LOSSES = ("nce", "softmax")
VIEW_TRANSFORMS = ("lab", "tinted_lab")
VIEWS = ("l", "ab")  # the channel groups, in the order of the objective's views
BACKBONES = tuple(f"{view}_backbone" for view in VIEWS)


def config():
  return ml_collections.ConfigDict(dict(
      dim=128,              # each view's feature (its bank's columns)
      width_fraction=0.5,   # each view's encoder: this fraction of config.model's width
      temperature=0.07,
      loss="nce",           # 'nce' (Z kept from the first step) or 'softmax'
      negatives=16384,      # K rows of the other view's bank per anchor
      bank_momentum=0.5,    # m_i <- normalise(m * m_i + (1 - m) * v)
      objective="core",     # 'core' or 'full_graph' (the same for two views)
  ))


def views():
  return views_lib.groups(image=views_lib.group(transform="lab"))


# The views are the colour channels: no colour jitter or grayscale, which would blank ab.
AUGMENT = {"color_prob": 0.0, "grayscale_prob": 0.0}


def tiny(c):
  c.cmc.update(dim=32, negatives=256)


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
                     transform, f"one of {VIEW_TRANSFORMS} (CMC's L and ab views)")


def view_backbone(c):
  """One view's ResNet: config.model at `width_fraction` of its width."""
  model = ml_collections.ConfigDict(c.model.to_dict())
  model.width_multiplier = c.model.width_multiplier * c.cmc.width_fraction
  return models.create_backbone(model)


class CMCModel(nn.Module):
  """An encoder and a linear layer to the feature for each view (L, ab)."""
  l_backbone: nn.Module
  ab_backbone: nn.Module
  l_head: nn.Module
  ab_head: nn.Module

  def __call__(self, lightness, ab, train: bool):
    """(the encoders' pooled features concatenated [B, 2C], (v_L, v_ab) [B, dim] each)."""
    h_l = self.l_backbone(lightness, train=train)
    h_ab = self.ab_backbone(ab, train=train)
    features = jnp.concatenate([h_l, h_ab], axis=-1)
    return features, (self.l_head(h_l, train=train), self.ab_head(h_ab, train=train))


class CMCEncoder(nn.Module):
  """The evaluation encoder: RGB images -> Lab -> both encoders, features concatenated."""
  l_backbone: nn.Module
  ab_backbone: nn.Module

  def __call__(self, images, train: bool):
    lightness, ab = transforms.lab_channels(images.astype(jnp.float32))
    return jnp.concatenate([self.l_backbone(lightness, train=train),
                            self.ab_backbone(ab, train=train)], axis=-1)


def create_model(c):
  def linear():
    return common.mlp_head(c, (), c.cmc.dim, use_bn=False)

  return CMCModel(view_backbone(c), view_backbone(c), linear(), linear())


def encoder(c):
  return methods.Encoder(
      module=CMCEncoder(view_backbone(c), view_backbone(c)),
      variables=lambda params, stats: {
          "params": {k: params[k] for k in BACKBONES},
          "batch_stats": {k: stats.get(k, {}) for k in BACKBONES}})


def init_model(run, rng, batch):
  return run.model.init(rng, batch["image"], batch["image_ab"], train=False)


def init_state(run, variables, batch):
  del variables, batch
  dim = run.config.cmc.dim
  return {"bank": {view: memory_bank.bank_for(run, dim) for view in VIEWS},
          "normalizer": jnp.zeros((len(VIEWS), len(VIEWS)), jnp.float32)}


def kept_normalizers(run, anchors, positives, negatives, stored):
  """Z of each anchor view against each other view's bank: `stored`, or at the first step
  the estimate from this batch (memory_bank.kept_normalizer), one per ordered pair."""
  s = run.config.cmc
  rows = []
  for a in range(len(VIEWS)):
    rows.append(jnp.stack([
        stored[a, b] if a == b else memory_bank.kept_normalizer(
            run, anchors[a], positives[b], negatives[b], stored[a, b], s.temperature)
        for b in range(len(VIEWS))]))
  return jnp.stack(rows)


def loss(params, state, batch, rng, run):
  del rng
  s = run.config.cmc
  forward = common.Forward(run, params, state["batch_stats"])
  features, anchors = forward(batch["image"], batch["image_ab"])
  index = batch["index"]
  banks = state["method_state"]["bank"]
  negative_rows = memory_bank.draw_negatives(run.config.seed, state["step"], run.num_train,
                                             s.negatives)
  positives = tuple(memory_bank.read(banks[view], index) for view in VIEWS)
  negatives = tuple(memory_bank.read(banks[view], negative_rows) for view in VIEWS)
  normalizer = state["method_state"]["normalizer"]
  if s.loss == "nce":
    normalizer = kept_normalizers(run, anchors, positives, negatives, normalizer)
  value = common.global_loss(
      run, losses.cmc_loss, anchors, positives, replicated=(negatives,),
      temperature=s.temperature, objective=s.objective, num_examples=run.num_train,
      normalizers=normalizer if s.loss == "nce" else None)
  method_state = {
      "bank": {view: memory_bank.ema_write(banks[view], index, v, s.bank_momentum)
               for view, v in zip(VIEWS, anchors)},
      "normalizer": normalizer}
  metrics = {"embedding_std": losses.embedding_std(anchors[0]),
             "ab_embedding_std": losses.embedding_std(anchors[1]),
             "cross_view_similarity": memory_bank.mean_similarity(anchors[0], positives[1])}
  return methods.LossResult(value, metrics, forward.batch_stats, method_state, features)


METHOD = methods.register(methods.Method(
    name="cmc", config=config, views=views, create_model=create_model, loss=loss, tiny=tiny,
    check=check, augment=AUGMENT, init_model=init_model, init_state=init_state,
    state_sharding=memory_bank.STATE_SHARDING, encoder=encoder))
