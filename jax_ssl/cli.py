"""What main.py does before TensorFlow and JAX start: errors as one line, quiet libraries.

Imports neither TensorFlow nor JAX, so that a mistyped flag is answered in a second.
"""
import contextlib
import difflib
import os
import pathlib
import re
import sys
import traceback

from absl import flags, logging

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
USAGE_ERROR = 2  # the exit code of a run stopped for a reason it names
# What jax_ssl raises on purpose, with a message that names the field, value or path.
DELIBERATE = (ValueError, FileNotFoundError, FloatingPointError)


def fail(message):
  """Prints `message` as one line on stderr and exits with USAGE_ERROR."""
  sys.stdout.flush()
  print(" ".join(str(message).split("\n")).strip(), file=sys.stderr, flush=True)
  raise SystemExit(USAGE_ERROR)


def raised_on_purpose(error):
  """Whether jax_ssl's own `raise` statement raised `error` (a deliberate, explained stop),
  rather than a library or a bug deep in the call stack (which keeps its traceback)."""
  if not isinstance(error, DELIBERATE) or error.__traceback__ is None:
    return False
  frame = traceback.extract_tb(error.__traceback__)[-1]
  inside = pathlib.Path(frame.filename).resolve().is_relative_to(PACKAGE_DIR)
  return inside and (frame.line or "").lstrip().startswith("raise")


# ------------------------------------------------------------ config fields ----
def field_names(config, prefix="config"):
  """Every dotted name of a ConfigDict's fields, sections included ('config.train',
  'config.train.batch_size', ...), from the object itself: no schema is consulted."""
  names = []
  for key, value in config.items():
    name = f"{prefix}.{key}"
    names.append(name)
    if hasattr(value, "items"):
      names += field_names(value, name)
  return names


def closest_field(name, config):
  """The field of `config` whose dotted name is closest to `name`, or None if none is close.

  Names are compared part by part: the last parts (the field) must be alike, and the
  sections before them alike too, or the field is looked for in other sections.
  """
  def alike(a, b):
    return difflib.SequenceMatcher(None, a, b).ratio()

  def similarity(known):
    wanted, candidate = name.split("."), known.split(".")
    if len(wanted) == len(candidate):
      sections = min((alike(a, b) for a, b in zip(wanted[:-1], candidate[:-1])), default=1.0)
    else:
      sections = 0.5
    return alike(wanted[-1], candidate[-1]) * (0.5 + 0.5 * sections)

  score, best = max(((similarity(known), known) for known in field_names(config)),
                    default=(0.0, None))
  return best if score >= 0.6 else None


def unknown_field_message(name, config):
  """'config.train.batchsize: unknown field; did you mean config.train.batch_size?'"""
  suggestion = closest_field(name, config)
  hint = f"did you mean {suggestion}?" if suggestion else \
      f"the fields are those of {name.rsplit('.', 1)[0]} in the config file"
  return f"{name}: unknown field; {hint}"


def with_suggestion(name, config):
  """'config.train.batchsize (did you mean config.train.batch_size?)', or `name` alone."""
  suggestion = closest_field(name, config)
  return f"{name} (did you mean {suggestion}?)" if suggestion else name


def has_field(config, dotted):
  node = config
  for key in dotted.split(".")[1:]:
    if not hasattr(node, "items") or key not in node:
      return False
    node = node[key]
  return True


def overrides(argv, flag="config"):
  """The dotted names that argv overrides: --config.train.batch_size=8 -> config.train.batch_size
  (--noconfig.x, for booleans, too)."""
  found = []
  for arg in argv:
    match = re.match(rf"^--?(?:no)?({flag}\.[^=]+)", arg)
    if match:
      found.append(match.group(1))
  return found


def config_argument(argv, flag="config"):
  """The value of --config in argv (`--config=x` or `--config x`), or None."""
  for i, arg in enumerate(argv):
    if re.match(rf"^--?{flag}=", arg):
      return arg.split("=", 1)[1]
    if re.match(rf"^--?{flag}$", arg) and i + 1 < len(argv):
      return argv[i + 1]
  return None


def unknown_override(argv, load_config):
  """The message for the first override in argv that names no field of the config that
  `load_config(argument of --config)` returns, or None (also when it does not load)."""
  argument, names = config_argument(argv), overrides(argv)
  if argument is None or not names:
    return None
  try:
    config = load_config(argument)
    unknown = [name for name in names if not has_field(config, name)]
  except Exception:  # noqa: BLE001  (a config that does not load: main.py reports that)
    return None
  return unknown_field_message(unknown[0], config) if unknown else None


def flag_error_message(error, argv):
  """One line for an error of flag parsing: a missing config file named as such, a config
  file's ValueError without the traceback that ml_collections adds to it."""
  argument = config_argument(argv)
  if argument is not None and not os.path.isfile(argument.split(":", 1)[0]):
    return f"--config={argument}: no such file"
  message = str(error)
  if "Error whilst parsing config file" in message:
    last = message.strip().splitlines()[-1]
    message = re.sub(r"^\w+(Error|Exception): ", "", last)
  return message


def parse_flags(argv, flag_values=flags.FLAGS):
  """absl's flag parsing (app.run's flags_parser), each mistake answered with one line on
  stderr and exit code 2; libraries' INFO logs off unless --verbosity is given."""
  try:
    rest = flag_values(argv)
    flag_values.config.get("task")  # a config file that failed to load says so here
  except Exception as error:  # noqa: BLE001  (sorted below: bugs keep their traceback)
    unknown = unknown_override(argv, flag_values["config"].parser.parse)
    if unknown:
      fail(unknown)
    if isinstance(error, (flags.Error, OSError)) or raised_on_purpose(error):
      fail(flag_error_message(error, argv))
    raise
  if len(rest) > 1:
    fail(f"unexpected arguments {rest[1:]}: every flag takes the form --name=value")
  _quiet_unless_asked(flag_values)
  return rest


def quiet_flags(argv, flag_values=flags.FLAGS):
  """absl's flag parsing for the modules' own command lines (python -m jax_ssl.export,
  jax_ssl.retrieve): libraries' INFO logs off unless --verbosity is given."""
  rest = flag_values(argv)
  _quiet_unless_asked(flag_values)
  return rest


def _quiet_unless_asked(flag_values):
  if flag_values["verbosity"].using_default_value:  # absl would raise it to INFO
    flag_values.verbosity = logging.converter.ABSL_WARNING


# ---------------------------------------------------------------- quiet ----
@contextlib.contextmanager
def native_stderr_silenced(silenced=True):
  """Sends what C++ code writes to stderr (file descriptor 2) meanwhile to /dev/null.

  TensorFlow's import prints INFO lines (oneDNN, absl::InitializeLog) that its
  TF_CPP_MIN_LOG_LEVEL no longer holds back. Python exceptions are unaffected.
  """
  if not silenced:
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  try:
    with open(os.devnull, "w") as null:
      os.dup2(null.fileno(), 2)
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)
