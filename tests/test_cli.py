"""main.py's helpers: the closest config field, overrides in argv, which errors are one line."""
import numpy as np
import pytest

from jax_ssl import cli, config as config_lib, metrics


@pytest.mark.parametrize("typed,expected", [
    ("config.train.batchsize", "config.train.batch_size"),
    ("config.trian.batch_size", "config.train.batch_size"),  # a mistyped section
    ("config.batch_size", "config.train.batch_size"),        # a missing section
    ("config.eval.baselin", "config.eval.baseline"),
    ("config.model.widht_multiplier", "config.model.width_multiplier"),
    ("config.train.foo", None),                               # nothing is close
])
def test_closest_field_comes_from_the_config_objects_own_fields(typed, expected):
  assert cli.closest_field(typed, config_lib.base_config()) == expected


def test_closest_field_needs_no_schema():
  """Any ConfigDict (or nested dict) works: the schema's layout is not consulted."""
  assert cli.closest_field("config.solver.stepz", {"solver": {"steps": 1, "rate": 2}}) == \
      "config.solver.steps"
  assert cli.field_names({"a": {"b": 1}, "c": 2}) == ["config.a", "config.a.b", "config.c"]


def test_unknown_override_names_it_in_full_with_a_suggestion():
  argv = ["main.py", "--config=x.py", "--workdir=/w", "--config.train.max_steps=3",
          "--config.train.batchsize=8", "--noconfig.eval.baseline"]
  assert cli.overrides(argv) == ["config.train.max_steps", "config.train.batchsize",
                                 "config.eval.baseline"]
  message = cli.unknown_override(argv, lambda argument: config_lib.base_config())
  assert message == "config.train.batchsize: unknown field; did you mean config.train.batch_size?"
  assert cli.unknown_override(argv[:4], lambda argument: config_lib.base_config()) is None
  assert cli.config_argument(["main.py", "--config", "y.py:tiny"]) == "y.py:tiny"


def test_only_errors_that_jax_ssl_raises_itself_are_one_line():
  with pytest.raises(ValueError) as deliberate:
    config_lib.require(False, "config.x", 3, "> 3")
  assert cli.raised_on_purpose(deliberate.value)
  with pytest.raises(ValueError) as bug:  # numpy's, from inside jax_ssl: keeps its traceback
    metrics._plain(np.zeros(2))  # pylint: disable=protected-access
  assert not cli.raised_on_purpose(bug.value)
  assert not cli.raised_on_purpose(KeyError("config.x"))
