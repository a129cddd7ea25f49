"""A memory bank: one normalised feature per training example, split by rows over the devices.

NPID (Wu et al. 2018) and PIRL (Misra & van der Maaten 2020) keep a feature m_i for
every example i of the training split, read and written by the batch's `index`:

- `bank_for(run, dim)` starts the bank [N', d] as random unit vectors, N' the split's size
  rounded up to a multiple of the devices, so each device holds N' / devices rows (the
  state's `{'bank': P('data')}`); rows past N are never read as negatives nor written.
- `read(bank, index)` gathers the batch's rows from whichever devices hold them (XLA
  moves them under `jit`), so a sharded bank reads as a single-device one.
- `ema_write(bank, index, features, momentum)` moves each example's row towards its new
  feature and re-normalises it: m_i <- (m * m_i + (1 - m) * v_i) / |...|, m = 0.5 in NPID
  (the official code's `--nce-m`) and PIRL.
- `draw_negatives(seed, step, num_examples, count)` draws row indices uniformly from the
  N examples, the same for every device and every resumed run: a function of (seed, step)
  alone; `step_rows` reads a step's rows of the batch and its noise rows.
- `init_state_of(section)` is a method's `init_state`: the bank and NCE's normalising
  constant Z, which `kept_normalizer` estimates at the first step and then keeps.

The bank is part of the train state, so checkpoints carry it and a resumed run continues
with it bit for bit.
"""
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from jax_ssl import losses, parallel

STATE_SHARDING = {"bank": P(parallel.DATA_AXIS)}  # `init_state`'s, for Method.state_sharding

# Random streams apart from the data's (data/device.py, data/transforms.py).
_INIT_STREAM = 10
_NEGATIVE_STREAM = 11


def num_rows(num_examples, num_devices):
  """N rounded up to a multiple of the devices: the bank's rows."""
  return -(-num_examples // num_devices) * num_devices


def init_bank(key, num_examples, num_devices, dim):
  """[N', dim] random unit vectors (normal draws, normalised: uniform on the sphere).

  The N examples' rows are drawn alone and the padding after them from another key, so
  the examples' rows are the same whatever the number of devices."""
  if num_examples <= 0:
    raise ValueError(f"a memory bank needs the training split's size; got {num_examples} "
                     f"examples (methods.Run.num_train)")
  padding = num_rows(num_examples, num_devices) - num_examples
  rows_key, padding_key = jax.random.split(key)
  bank = jnp.concatenate([jax.random.normal(rows_key, (num_examples, dim), jnp.float32),
                          jax.random.normal(padding_key, (padding, dim), jnp.float32)])
  return losses.l2_normalize(bank)


def bank_for(run, dim):
  """`init_bank` for `run`: its training split over its devices, keyed by the config's
  seed."""
  key = jax.random.fold_in(jax.random.key(run.config.seed), _INIT_STREAM)
  return init_bank(key, run.num_train, run.mesh.size, dim)


def init_state_of(section):
  """A method's `init_state` (shard it with `STATE_SHARDING`): a bank of
  `config.<section>.dim` columns, and NCE's Z at 0 until the first step estimates it
  (`kept_normalizer`)."""
  def init_state(run, variables, batch):
    del variables, batch
    return {"bank": bank_for(run, run.config[section].dim),
            "normalizer": jnp.zeros([], jnp.float32)}
  return init_state


def step_rows(run, method_state, index, step, num_negatives):
  """(the bank, the batch's rows [B, d], `num_negatives` noise rows [K, d]) of a step."""
  bank = method_state["bank"]
  negatives = draw_negatives(run.config.seed, step, run.num_train, num_negatives)
  return bank, read(bank, index), read(bank, negatives)


def read(bank, index):
  """The rows of the batch's examples, [B, d]."""
  return bank[index]


def ema_write(bank, index, features, momentum):
  """The bank with row index[b] replaced by normalise(momentum * row + (1 - momentum) *
  features[b]); `features` are normalised first and carry no gradient."""
  features = losses.l2_normalize(jax.lax.stop_gradient(features))
  rows = losses.l2_normalize(momentum * read(bank, index) + (1.0 - momentum) * features)
  return bank.at[index].set(rows.astype(bank.dtype))


def draw_negatives(seed, step, num_examples, count):
  """`count` row indices drawn uniformly (with replacement) from [0, num_examples), a
  function of (seed, step) only."""
  key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), _NEGATIVE_STREAM), step)
  return jax.random.randint(key, (count,), 0, num_examples, dtype=jnp.int32)


def kept_normalizer(run, z, positives, negatives, stored, temperature):
  """NCE's Z for this step: `stored`, or at the first step (while it is still 0) the
  estimate from this batch (`losses.nce_normalizer`), which the method then keeps in its
  state, as the official code sets its `Z` once."""
  from jax_ssl.methods import common  # noqa: PLC0415  (methods import this module)
  estimate = common.global_loss(run, losses.nce_normalizer, z, positives,
                                replicated=(negatives,), temperature=temperature,
                                num_examples=run.num_train)
  return jnp.where(stored > 0, stored, estimate)


def mean_similarity(features, rows):
  """The batch's mean cosine between its features and their bank rows, a monitor."""
  return jnp.mean(jnp.sum(losses.l2_normalize(features) * rows, axis=-1))
