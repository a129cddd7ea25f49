"""NPID (Wu et al. 2018): non-parametric instance discrimination with a memory bank.

Each image is its own class. One augmented view goes through the encoder and a linear
layer to a 128-d feature v, normalised; the memory bank (jax_ssl/memory_bank.py) holds a
feature m_i for every training example, sharded by rows over the devices. The loss
scores v against its own row m_i and either

- `loss='nce'` (the paper's choice for ImageNet): K noise rows drawn uniformly from the
  bank, the same for the whole global batch at a step, from (seed, step); NCE with the
  partition function Z estimated from the first batch and then kept in the method state
  (losses.instance_nce, losses.nce_normalizer); or
- `loss='softmax'`: the non-parametric softmax over every row of the bank
  (losses.instance_softmax), each device scoring the batch against its own rows.

After the step each example's row moves towards its new feature, m_i <- normalise(0.5 m_i
+ 0.5 v) (`bank_momentum`). The evaluation encoder is the backbone.
"""
import ml_collections

from jax_ssl import config as config_lib, losses, memory_bank, methods, models
from jax_ssl.data import views as views_lib
from jax_ssl.methods import common

LOSSES = ("nce", "softmax")


def config():
  return ml_collections.ConfigDict(dict(
      dim=128,            # the feature's dimension (the bank's columns)
      temperature=0.07,
      loss="nce",         # 'nce' (K sampled noise rows) or 'softmax' (the whole bank)
      negatives=4096,     # K, noise rows drawn uniformly from the bank at each step
      bank_momentum=0.5,  # m_i <- normalise(m * m_i + (1 - m) * v)
  ))


def views():
  return views_lib.groups(view1=views_lib.group())


def tiny(c):
  c.npid.update(dim=32, negatives=256)


def check(c, num_devices):
  del num_devices
  s = c.npid
  config_lib.require(s.loss in LOSSES, "config.npid.loss", s.loss, f"one of {LOSSES}")
  config_lib.require(s.temperature > 0, "config.npid.temperature", s.temperature, "> 0")
  config_lib.require(s.dim > 0, "config.npid.dim", s.dim, "> 0")
  config_lib.require(s.negatives > 0, "config.npid.negatives", s.negatives, "> 0")
  config_lib.require(0 <= s.bank_momentum < 1, "config.npid.bank_momentum", s.bank_momentum,
                     "in [0, 1)")


def create_model(c):
  head = common.mlp_head(c, (), c.npid.dim, use_bn=False)  # NPID's linear layer to 128-d
  return common.EncoderWithHeads(models.create_backbone(c.model), head)


def loss(params, state, batch, rng, run):
  s = run.config.npid
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, v = forward(batch["view1"])
  index = batch["index"]
  bank, positives, negatives = memory_bank.step_rows(run, state["method_state"], index,
                                                     state["step"], s.negatives)
  normalizer = state["method_state"]["normalizer"]
  if s.loss == "softmax":  # the whole bank: the drawn rows go unused
    value = common.global_loss(run, losses.instance_softmax, v, index, bank,
                               temperature=s.temperature, num_examples=run.num_train)
  else:
    normalizer = memory_bank.kept_normalizer(run, v, positives, negatives, normalizer,
                                             s.temperature)
    value = common.global_loss(run, losses.instance_nce, v, positives,
                               replicated=(negatives,), temperature=s.temperature,
                               normalizer=normalizer, num_examples=run.num_train)
  method_state = {"bank": memory_bank.ema_write(bank, index, v, s.bank_momentum),
                  "normalizer": normalizer}
  metrics = {"embedding_std": losses.embedding_std(v),
             "positive_similarity": memory_bank.mean_similarity(v, positives)}
  return methods.LossResult(value, metrics, forward.batch_stats, method_state, features)


METHOD = methods.register(methods.Method(
    name="npid", config=config, views=views, create_model=create_model, loss=loss, tiny=tiny,
    check=check, init_state=memory_bank.init_state_of("npid"),
    state_sharding=memory_bank.STATE_SHARDING))
