"""The method registry: `config.method` names a module of this package.

A method module exports:
  create_model(config) -> flax module whose params hold a 'backbone' subtree
      (the encoder that export and evaluation use) and whose __call__(x, train)
      returns (backbone features, method outputs);
  init_method_state(config, variables) -> pytree of extra state (targets,
      queues), may be {};
  compute_loss(params, state, batch, rng, run) -> (loss, (changes, metrics, features)):
      `state` is the train state before this step (read its batch_stats,
      method_state and step); `changes` holds the new values of state entries
      the forward pass produced ('batch_stats', and 'method_state' when a
      queue is filled); `features` are the backbone features of the first
      view, [B, F], for probes that train beside the method;
  after_update(state, run) -> state, applied to the state after the optimizer
      update and before the step counter moves (EMA targets, re-normalised
      prototypes). `state['step']` is still the step just taken;
  adapt_optimizer(tx, run) -> tx, e.g. to freeze some parameters for a while;
  check_config(config) raises ValueError naming a field of the method's
      section that cannot work, before anything is built.
"""
import dataclasses
import importlib
from typing import Any

METHODS = ("simclr", "moco", "byol", "swav")


@dataclasses.dataclass(frozen=True)
class Run:
  """What a method may know of the run: built once by the loop, static under jit."""
  model: Any
  config: Any
  mesh: Any
  steps_per_epoch: int
  total_steps: int


def get(name):
  if name not in METHODS:
    raise ValueError(f"config.method={name!r} is not a method; expected one of {METHODS}")
  return importlib.import_module(f"jax_ssl.methods.{name}")


def keep_state(state, run):
  """`after_update` for methods with nothing to do after the optimizer."""
  del run
  return state


def same_optimizer(tx, run):
  """`adapt_optimizer` for methods that train every parameter all the time."""
  del run
  return tx
