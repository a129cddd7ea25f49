"""The views a method makes of each image, described as data.

`config.data.views` holds one group per kind of view, `{name: group}`, which the method
declares (`methods.Method.views`) and the config file or the command line can change
(`--config.data.views.view2.solarize_prob=0.2`). A group is `count` views of each image at
one size, each a random crop from an area range, flipped, coloured with its own
probabilities, and optionally passed through a transform that makes a target (a rotation
and its label, shuffled tiles and their permutation, Lab channels, a masked region).

A group's fields left None take the shared values: `size` from `config.data.image_size`,
crop areas and op probabilities from `config.data.augment`. Groups are made in the order
of their names (ml_collections sorts keys), which also fixes each view's random seeds.

In a batch a group is `batch[name]`: [B, S, S, 3] when count == 1, else [B, count, S, S, 3]
(`stacked`); its transform's targets sit beside it as `batch[f'{name}_{target}']`.
"""
import dataclasses

import ml_collections
from ml_collections.config_dict import placeholder

# Fields a group may leave None, and where their value then comes from.
_FROM_AUGMENT = ("crop_area_min", "crop_area_max", "color_prob", "grayscale_prob",
                 "blur_prob", "solarize_prob")
PROBABILITIES = ("color_prob", "grayscale_prob", "blur_prob", "solarize_prob")


def group(count=1, size=None, transform="", **augment_overrides):
  """The config of one view group; fields not given follow config.data.{image_size,augment}.

  `augment_overrides` are any of crop_area_min, crop_area_max, color_prob, grayscale_prob,
  blur_prob and solarize_prob. `transform` names one of `transforms.TRANSFORMS`, with an
  optional argument after a colon ('tiles:3').
  """
  unknown = set(augment_overrides) - set(_FROM_AUGMENT)
  if unknown:
    raise ValueError(f"view group fields {sorted(unknown)} are unknown; a group takes count, "
                     f"size, transform and {list(_FROM_AUGMENT)}")
  fields = {"count": count, "size": placeholder(int) if size is None else size,
            "transform": transform}
  for name in _FROM_AUGMENT:
    value = augment_overrides.get(name)
    fields[name] = placeholder(float) if value is None else float(value)
  return ml_collections.ConfigDict(fields)


def groups(**named):
  """config.data.views from {name: group(...)}."""
  return ml_collections.ConfigDict(named)


@dataclasses.dataclass(frozen=True)
class ViewGroup:
  """A view group with every field resolved: what the pipelines build."""
  name: str
  count: int
  size: int
  area_range: tuple[float, float]
  color_prob: float
  grayscale_prob: float
  blur_prob: float
  solarize_prob: float
  transform: str = ""

  @property
  def stacked(self):
    """Whether the batch holds this group as [B, count, S, S, 3] rather than [B, S, S, 3]."""
    return self.count != 1


def view_groups(data_config) -> list[ViewGroup]:
  """The groups of config.data.views, resolved, in name order."""
  aug = data_config.augment

  def pick(view, name):
    return aug[name] if view[name] is None else view[name]

  return [ViewGroup(name=name, count=view.count,
                    size=data_config.image_size if view.size is None else view.size,
                    area_range=(pick(view, "crop_area_min"), pick(view, "crop_area_max")),
                    transform=view.transform,
                    **{p: pick(view, p) for p in PROBABILITIES})
          for name, view in data_config.views.items()]


def group_problems(data_config):
  """(field, value, what is accepted) for each view-group field that cannot work."""
  from jax_ssl.data import transforms  # noqa: PLC0415  (JAX only when views are checked)
  problems = []
  for group_ in view_groups(data_config):
    prefix = f"views.{group_.name}."
    low, high = group_.area_range
    checks = [
        ("count", group_.count, isinstance(group_.count, int) and group_.count >= 0,
         "an integer >= 0"),
        ("size", group_.size, isinstance(group_.size, int) and group_.size >= 1,
         "an integer >= 1 (or None: config.data.image_size)"),
        ("crop_area_min", low, 0 < low <= high, "in (0, crop_area_max]"),
        ("crop_area_max", high, 0 < high <= 1, "in (0, 1]"),
        ("transform", group_.transform, transforms.is_known(group_.transform),
         f"'' or one of {transforms.describe()}"),
    ] + [(name, getattr(group_, name), 0 <= getattr(group_, name) <= 1, "in [0, 1]")
         for name in PROBABILITIES]
    problems += [(prefix + field, value, accepted)
                 for field, value, ok, accepted in checks if not ok]
  return problems
