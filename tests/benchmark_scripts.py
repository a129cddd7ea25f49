"""Imports the scripts of benchmarks/ (a folder of scripts, not a package) for the tests."""
import importlib
import pathlib
import sys

BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
  """benchmarks/<name>.py as a module, imported once per process."""
  if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
  return importlib.import_module(name)
