"""The method registry: `config.method` names a module of this package.

A method module exports:
  create_model(config) -> flax module whose params hold a 'backbone' subtree
      (the encoder that export and evaluation use) and whose __call__(x, train)
      returns (backbone features, method outputs);
  init_method_state(config, variables) -> pytree of extra state (targets, queues), may be {};
  compute_loss(params, batch_stats, method_state, batch, rng, *, model, config, mesh)
      -> (loss, (new_batch_stats, metrics dict));
  update_method_state(config, method_state, params, step) -> method_state, run after
      each optimizer update (EMA targets, queues).
"""
import importlib

METHODS = ("simclr",)


def get(name):
  if name not in METHODS:
    raise ValueError(f"config.method={name!r} is not a method; expected one of {METHODS}")
  return importlib.import_module(f"jax_ssl.methods.{name}")
