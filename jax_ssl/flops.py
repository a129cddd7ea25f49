"""Model FLOPs of a JAX function, counted from its jaxpr.

XLA's cost analysis is backend-specific: on GPU it leaves out convolutions
that run as cuDNN custom calls. Counting the matrix products and
convolutions of the traced program gives the same figure everywhere, the
one MFU conventionally uses (elementwise work is not counted).
"""
import math

import jax
from jax.extend import core as jex_core


def _dot_general_flops(eqn):
  lhs, _ = (v.aval for v in eqn.invars)
  (lhs_contract, _), _ = eqn.params["dimension_numbers"]
  contracted = math.prod(lhs.shape[d] for d in lhs_contract)
  return 2 * math.prod(eqn.outvars[0].aval.shape) * contracted


def _conv_flops(eqn):
  rhs = eqn.invars[1].aval
  out_features_dim = eqn.params["dimension_numbers"].rhs_spec[0]
  macs_per_output = math.prod(rhs.shape) // rhs.shape[out_features_dim]
  # A strided conv's input gradient is a conv over a zero-dilated input; the
  # products with the inserted zeros are not work, so count 1/prod(dilation).
  dilation = math.prod(eqn.params.get("lhs_dilation") or (1,))
  return 2 * math.prod(eqn.outvars[0].aval.shape) * macs_per_output // dilation


def _sub_jaxprs(params):
  for value in params.values():
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
      if isinstance(v, jex_core.ClosedJaxpr):
        yield v.jaxpr
      elif isinstance(v, jex_core.Jaxpr):
        yield v


def jaxpr_flops(jaxpr):
  total = 0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "dot_general":
      total += _dot_general_flops(eqn)
    elif name == "conv_general_dilated":
      total += _conv_flops(eqn)
    elif name == "cond":  # one branch runs: count the costliest
      total += max(jaxpr_flops(b.jaxpr) for b in eqn.params["branches"])
    else:
      inner = sum(jaxpr_flops(j) for j in _sub_jaxprs(eqn.params))
      if name == "scan":
        inner *= eqn.params["length"]
      elif name == "shard_map":  # the body is one device's share
        inner *= eqn.params["mesh"].size
      total += inner
  return total


def count_flops(fn, *args, **kwargs):
  """Matmul and convolution FLOPs of one call of `fn` on arguments like these."""
  return jaxpr_flops(jax.make_jaxpr(fn)(*args, **kwargs).jaxpr)
