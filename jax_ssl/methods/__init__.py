"""The method contract and the registry: `config.method` names a registered `Method`.

A method is one module of this package that builds `Method` records and passes each to
`register` when imported (a module may hold several: `moco.py` registers `moco_v2` and
`moco_v3`). The loop (train.py, step.py) knows a method only through these fields.

Required:
  name            `config.method`, and the name of the method's config section.
  config()        -> ConfigDict: that section, with the paper's defaults.
  views()         -> ConfigDict for `config.data.views`: the views the method makes of
                  each image, as data (data/views.py: counts, sizes, crops, per-view op
                  probabilities, transforms that make targets).
  create_model(config) -> a flax module.
  loss(params, state, batch, rng, run) -> LossResult. `state` is the train state before
                  the step (read `batch_stats`, `method_state`, `step`); `batch` holds the
                  view groups, their transforms' targets and `index`, each example's
                  position in the training split. The method changes nothing but what
                  LossResult returns.

Optional (the default in brackets):
  augment         {field: value} of `config.data.augment` that the paper's views use
                  (BYOL's colour jitter) [{}].
  tiny(config)    shrinks the method's section and views for a CPU, in place [nothing].
  check(config, num_devices) raises ValueError naming a field that cannot work, before
                  anything is built [nothing].
  init_model(run, rng, batch) -> the model's variables [model.init on the first view
                  group's images].
  init_state(run, variables, batch) -> the method's state, a dict [{}]. `run.num_train`
                  is the training split's size, for per-example state.
  state_sharding  {key of the method state: PartitionSpec} for its subtree, e.g.
                  {'bank': P('data')} for N rows split over the devices [replicated].
  after_update(params, method_state, step, run) -> (params, method_state), after the
                  optimizer: EMA targets, re-normalised prototypes [unchanged]. `step` is
                  the step just taken, counted from 0.
  epoch_start(state, epoch, context) -> EpochUpdate, on the host before the first step
                  of every epoch (k-means on `context.train_features()`, a head reset)
                  [nothing].
  param_groups    {group: (regex over parameter paths 'backbone/conv1/kernel', default
                  treatment)}: `config.optim.groups.<group>` then sets its optimizer
                  treatment (optim.GROUP_FIELDS: frozen epochs, constant learning rate,
                  learning-rate multiplier, weight decay) [one group, `default`].
  encoder(config) -> Encoder: images to features for evaluation, the online probe and
                  export [the backbone, params['backbone']].
  choices         {field of the method's section: the values it may take}: checked with
                  the config, and what `jax_ssl.compare --sweep=<name>.<field>` runs when
                  given no values [{}].
"""
import dataclasses
import importlib
import inspect
import pkgutil
import re
from typing import Any, Callable, Mapping, NamedTuple, Optional

import ml_collections
from jax.sharding import PartitionSpec

from jax_ssl import models

# Top-level config fields: a method's section may not take one of these names.
RESERVED_NAMES = ("task", "pretrained", "method", "seed", "model", "data", "train", "optim",
                  "eval")
HELPER_MODULES = ("common",)  # modules of this package that register no method


@dataclasses.dataclass(frozen=True)
class Run:
  """What a method may know of the run: built once by the loop, static under jit."""
  model: Any
  config: Any
  mesh: Any
  steps_per_epoch: int
  total_steps: int
  num_train: int = 0  # examples in the training split (rows of a memory bank)


class LossResult(NamedTuple):
  """What a method's loss returns; the loop merges `batch_stats` and `method_state` into
  the train state (None keeps them as they were) and logs `metrics` beside the loss."""
  loss: Any
  metrics: Mapping[str, Any] = {}
  batch_stats: Any = None
  method_state: Any = None
  features: Any = None  # [B, F] encoder features of each example, for the online probe


class EpochUpdate(NamedTuple):
  """What an epoch-start hook changes: parameters, method state, and the parameter groups
  whose optimizer state starts afresh (a re-initialised head)."""
  params: Any = None
  method_state: Any = None
  reset_groups: tuple = ()


@dataclasses.dataclass(frozen=True)
class EpochContext:
  """What an epoch-start hook may use besides the state.

  `train_features()` -> (features [N', F], valid [N']): the evaluation encoder's features
  of every training example, row i for the example whose `index` is i, sharded by rows
  over the devices (evaluate.features_by_index).
  """
  run: Run
  train_features: Callable[[], tuple]


@dataclasses.dataclass(frozen=True)
class Encoder:
  """Images to features [B, F], in inference mode.

  `module.apply(variables(params, batch_stats), images, train=False)` gives the features;
  `is_backbone` marks the plain backbone, which export can also write for PyTorch.
  """
  module: Any
  variables: Callable[[Any, Any], Any]
  is_backbone: bool = False


def backbone_encoder(config):
  """The default evaluation encoder: the backbone in params['backbone']."""
  return Encoder(
      module=models.create_backbone(config.model),
      variables=lambda params, stats: {"params": params["backbone"],
                                       "batch_stats": stats.get("backbone", {})},
      is_backbone=True)


def first_view(batch, config):
  """The images of the config's first view group, one per example: [B, ...]."""
  images = batch[next(iter(config.data.views.keys()))]
  stacked = images.ndim == 5
  return images[:, 0] if stacked else images


def init_model_on_first_view(run, rng, batch):
  return run.model.init(rng, first_view(batch, run.config), train=False)


def no_state(run, variables, batch):
  del run, variables, batch
  return {}


def group(pattern, **treatment):
  """A parameter group declaration: (regex over parameter paths, default treatment)."""
  return (pattern, treatment)


@dataclasses.dataclass(frozen=True)
class Method:
  """A self-supervised method, as the loop sees it (see the module docstring)."""
  name: str
  config: Callable[[], ml_collections.ConfigDict]
  views: Callable[[], ml_collections.ConfigDict]
  create_model: Callable[[Any], Any]
  loss: Callable[..., LossResult]
  augment: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  tiny: Optional[Callable[[Any], None]] = None
  check: Optional[Callable[[Any, int], None]] = None
  init_model: Callable[..., Any] = init_model_on_first_view
  init_state: Callable[..., Any] = no_state
  state_sharding: Mapping[str, PartitionSpec] = dataclasses.field(default_factory=dict)
  after_update: Optional[Callable[..., Any]] = None
  epoch_start: Optional[Callable[..., EpochUpdate]] = None
  param_groups: Mapping[str, tuple] = dataclasses.field(default_factory=dict)
  encoder: Callable[[Any], Encoder] = backbone_encoder
  choices: Mapping[str, tuple] = dataclasses.field(default_factory=dict)


# Each callable field and the parameters it must take, in order.
_SIGNATURES = {
    "config": (), "views": (), "create_model": ("config",),
    "loss": ("params", "state", "batch", "rng", "run"), "tiny": ("config",),
    "check": ("config", "num_devices"), "init_model": ("run", "rng", "batch"),
    "init_state": ("run", "variables", "batch"),
    "after_update": ("params", "method_state", "step", "run"),
    "epoch_start": ("state", "epoch", "context"), "encoder": ("config",),
}
REQUIRED = ("name", "config", "views", "create_model", "loss")


def contract_problems(method):
  """What `method` lacks or gets wrong of the contract, one sentence each."""
  if not isinstance(method, Method):
    return [f"{method!r} is not a jax_ssl.methods.Method"]
  problems = [f"it lacks `{field}`" for field in REQUIRED if getattr(method, field) is None]
  if not (isinstance(method.name, str) and method.name.isidentifier()):
    problems.append(f"its name {method.name!r} is not a Python identifier")
  elif method.name in RESERVED_NAMES:
    problems.append(f"its name {method.name!r} is a top-level config field")
  for field, expected in _SIGNATURES.items():
    fn = getattr(method, field)
    if fn is None:
      continue
    if not callable(fn):
      problems.append(f"`{field}` is not callable")
      continue
    params = list(inspect.signature(fn).parameters.values())
    positional = [p for p in params if p.default is p.empty
                  and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) != len(expected):
      problems.append(f"`{field}` takes {len(positional)} argument(s) "
                      f"({', '.join(p.name for p in positional)}); the contract passes "
                      f"{len(expected)} ({', '.join(expected)})")
  unknown_augment = sorted(set(method.augment) - set(_augment_fields()))
  if unknown_augment:
    problems.append(f"augment names fields config.data.augment lacks: {unknown_augment}")
  for key, spec in method.state_sharding.items():
    if not isinstance(spec, PartitionSpec):
      problems.append(f"state_sharding[{key!r}] is not a PartitionSpec")
  section = method.config() if callable(method.config) else {}
  for field, allowed in method.choices.items():
    if field not in section:
      problems.append(f"choices names {field!r}, which its config section lacks")
    elif not (isinstance(allowed, tuple) and allowed and section[field] in allowed):
      problems.append(f"choices[{field!r}] is not a tuple holding its default "
                      f"{section[field]!r}")
  for name, declared in method.param_groups.items():
    if name == "default" or not name.isidentifier():
      problems.append(f"parameter group {name!r} must be an identifier other than 'default'")
    try:
      re.compile(declared[0])
    except (re.error, TypeError, IndexError):
      problems.append(f"parameter group {name!r} is not (regex, treatment)")
  return problems


def _augment_fields():
  from jax_ssl import config as config_lib  # noqa: PLC0415  (config imports this package)
  return config_lib.base_config().data.augment.keys()


_REGISTRY = {}


def register(method):
  """Adds `method` to the registry after checking it against the contract."""
  problems = contract_problems(method)
  if problems:
    name = getattr(method, "name", method)
    raise TypeError(f"method {name!r} does not meet the contract: " + "; ".join(problems))
  if method.name in _REGISTRY and _REGISTRY[method.name] is not method:
    raise ValueError(f"a method named {method.name!r} is registered already")
  _REGISTRY[method.name] = method
  return method


def unregister(name):
  """Removes a method registered from outside this package (a test's, a notebook's)."""
  _REGISTRY.pop(name, None)


def _discover():
  """Imports every method module of this package, which registers its methods."""
  for module in pkgutil.iter_modules(__path__):
    if module.name not in HELPER_MODULES:
      importlib.import_module(f"{__name__}.{module.name}")


def names():
  """The registered methods' names, sorted."""
  _discover()
  return tuple(sorted(_REGISTRY))


def get(name):
  _discover()
  if name not in _REGISTRY:
    raise ValueError(f"config.method={name!r} is not a method; expected one of {names()}")
  return _REGISTRY[name]


def compose(config, method):
  """Adds the method's section, views and parameter groups to a base config."""
  from jax_ssl import optim  # noqa: PLC0415  (optim imports nothing of ours, but keep it light)
  config.method = method.name
  config[method.name] = method.config()
  config.data.views = method.views()
  config.data.augment.update(method.augment)
  for group_name, (_, treatment) in method.param_groups.items():
    config.optim.groups[group_name] = optim.group_config(**treatment)
  return config
