r"""Compares methods, or values of one config field, on the same data, seeds and budget.

  python -m jax_ssl.compare --config=configs/simclr_tiny.py --config=configs/byol_tiny.py \
      --source=builtin:mnist --source=builtin:colour_digits --seeds=0,1 --out=/tmp/compare
  python -m jax_ssl.compare --config=configs/simclr_tiny.py \
      --sweep=simclr.temperature=0.1,0.2,0.5 --out=/tmp/temperature
  python -m jax_ssl.compare --config=configs/simclr_tiny.py --sweep=simclr.loss --out=/tmp/loss

Each (config or value, source, seed) is one pretraining run through the training loop, in
its own workdir under OUT/runs/; each run evaluates its random-init encoder too, so every
row shows what pretraining gained. A finished run is not run again: run the same command
to fill in what a stopped comparison left. OUT gets
  results.jsonl     one line per run: its name, source, seed, figures, wall time or error
  comparison.md     linear and kNN top-1 against the random-init encoder, mean and spread
                    (sample standard deviation) over the seeds, the gain with its standard
                    error from the number of test images, and each run's minutes
  comparison.png    the same as bars, one panel per source
--set=field=value (repeatable) changes every run, e.g. --set=train.num_steps=500;
--set=eval.probe_layers=True adds the probe on each ResNet stage to results.jsonl and a
second table in comparison.md.
"""
import ast
import contextlib
import dataclasses
import importlib.util
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from absl import app, flags  # noqa: E402

from jax_ssl import cli  # noqa: E402

flags.DEFINE_multi_string("config", None, "A config file (path[:arg]); repeat to compare.")
flags.DEFINE_multi_string("source", [], "config.data.source of each run; repeat to compare "
                          "datasets. Default: each config's own.")
flags.DEFINE_string("seeds", "0", "Comma-separated seeds; each run is repeated for each.")
flags.DEFINE_string("sweep", "", "field=v1,v2,...: one run per value of a config field; "
                    "a field whose method declares its choices (simclr.loss) may omit them.")
flags.DEFINE_multi_string("set", [], "field=value applied to every run.")
flags.DEFINE_string("out", None, "Where the runs, the table and the chart go.")
flags.DEFINE_float("gain_points", 5.0, "The table marks runs whose linear top-1 beats the "
                   "random-init encoder's by at least this many points.")
flags.mark_flags_as_required(["config", "out"])

FIGURES = ("linear_top1", "baseline_linear_top1", "knn_top1", "baseline_knn_top1")
# with --set=eval.probe_layers=True: linear_top1_layer1, ... (metrics.STAGE_PREFIX, which is
# not imported here: metrics imports JAX and TensorFlow, which wait until flags are parsed)
STAGE_PREFIX = "linear_top1_"


def is_stage(key):
  return key.removeprefix("baseline_").startswith(STAGE_PREFIX)


class Stopped(Exception):
  """A run stopped on SIGTERM (preemption): the comparison stops too, resumable."""


@dataclasses.dataclass(frozen=True)
class Variant:
  """One column of the comparison: a config file with the overrides that make it differ."""
  name: str
  config_file: str
  overrides: tuple = ()


def parse_value(text):
  """'0.2' -> 0.2, 'True' -> True, '(64,)' -> (64,), anything else stays a string."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def split_assignment(text, flag):
  field, sep, value = text.partition("=")
  if not sep or not field:
    raise ValueError(f"--{flag}={text!r} is invalid: expected field=value")
  return field.removeprefix("config."), value


def load_config(config_file):
  """get_config(arg) of 'path/to/file.py[:arg]'."""
  path, _, arg = config_file.partition(":")
  if not os.path.isfile(path):
    raise ValueError(f"--config={config_file!r}: no such config file")
  spec = importlib.util.spec_from_file_location("compared_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg or None)


def apply_overrides(config, overrides):
  for field, value in overrides:
    if not cli.has_field(config, f"config.{field}"):
      raise ValueError(cli.unknown_field_message(f"config.{field}", config)
                       .replace("unknown field", "does not exist in this config"))
    try:
      config.update_from_flattened_dict({field: value})
    except TypeError as error:
      raise ValueError(f"config field {field!r} cannot be {value!r}: {error}") from error
  return config


def variants(config_files, sweep):
  """The compared variants: each config file, or one config file per value of the sweep."""
  if not sweep:
    return [Variant(os.path.basename(f.partition(":")[0]).removesuffix(".py")
                    + (f":{f.partition(':')[2]}" if ":" in f else ""), f) for f in config_files]
  if len(config_files) != 1:
    raise ValueError("--sweep takes one --config")
  field, values = split_assignment(sweep, "sweep") if "=" in sweep else (sweep, "")
  values = [parse_value(v) for v in values.split(",")] if values else declared_choices(field)
  if not values:
    raise ValueError(f"--sweep={sweep!r} is invalid: expected field=v1,v2,... (only a "
                     "field with declared choices, such as simclr.loss, may omit them)")
  return [Variant(f"{field}={value}", config_files[0], ((field, value),)) for value in values]


def declared_choices(field):
  """The values a method declares for a field of its section ('simclr.loss'), or ()."""
  from jax_ssl import methods  # noqa: PLC0415  (JAX only once flags parsed)
  section, _, key = field.removeprefix("config.").partition(".")
  if section not in methods.names():
    return ()
  return tuple(methods.get(section).choices.get(key, ()))


def run_dir(out, variant, source, seed):
  safe = lambda text: "".join(c if c.isalnum() or c in "._-=" else "_" for c in text)
  return os.path.join(out, "runs", safe(variant.name), safe(source), f"seed{seed}")


def run_one(variant, source, seed, common, workdir):
  """Pretrains one variant in `workdir`; its console goes to workdir/console.log.
  Returns its record for results.jsonl (with 'error' when the run failed)."""
  from jax_ssl import train  # noqa: PLC0415  (TensorFlow and JAX only once flags parsed)
  done = os.path.join(workdir, "result.json")
  if os.path.exists(done):
    with open(done) as f:
      return json.load(f)
  config = apply_overrides(load_config(variant.config_file), variant.overrides + common)
  config.seed = seed
  config.eval.baseline = True
  if source:
    config.data.source = source
  os.makedirs(workdir, exist_ok=True)
  record = {"name": variant.name, "source": config.data.source, "seed": seed}
  started, cpu_started = time.perf_counter(), time.process_time()
  with open(os.path.join(workdir, "console.log"), "a") as log, contextlib.redirect_stdout(log):
    try:
      results = train.train_and_evaluate(config, workdir)
    except (ValueError, FloatingPointError) as error:
      return {**record, "error": f"{type(error).__name__}: {error}"}
  if "stopped_at_step" in results:  # SIGTERM: the run kept a checkpoint; so does the plan
    raise Stopped(f"stopped by SIGTERM at step {results['stopped_at_step']} of {workdir}; "
                  "run the same command again to resume")
  record["seconds"] = round(time.perf_counter() - started, 1)
  # Every thread's CPU time: on a machine shared with other work, wall time says little.
  record["cpu_seconds"] = round(time.process_time() - cpu_started, 1)
  record.update({k: float(v) for k, v in results.items() if k in FIGURES or is_stage(k)})
  if "test_images" in results:
    record["test_images"] = int(results["test_images"])
  with open(done, "w") as f:
    json.dump(record, f)
  return record


# ------------------------------------------------------------ the table ----
def _mean_std(values):
  if not values:
    return None, None
  mean = sum(values) / len(values)
  if len(values) < 2:
    return mean, None
  return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def summarise(records):
  """{(source, name): {figure: (mean, std)} plus 'seeds', 'minutes', 'errors'}, in order."""
  rows = {}
  for r in records:
    rows.setdefault((r["source"], r["name"]), []).append(r)
  summary = {}
  for key, runs in rows.items():
    good = [r for r in runs if "error" not in r]
    figures = FIGURES + tuple(dict.fromkeys(k for r in good for k in r if is_stage(k)))
    row = {k: _mean_std([r[k] for r in good if k in r]) for k in figures}
    row["seeds"] = len(good)
    row["test_images"] = next((r["test_images"] for r in good if "test_images" in r), None)
    row["minutes"] = max((r["seconds"] / 60 for r in good), default=None)
    row["cpu_minutes"] = max((r["cpu_seconds"] / 60 for r in good if "cpu_seconds" in r),
                             default=None)
    row["errors"] = [r["error"] for r in runs if "error" in r]
    summary[key] = row
  return summary


def _cell(mean_std):
  mean, std = mean_std
  if mean is None:
    return "–"
  return f"{mean:.3f}" + (f" ± {std:.3f}" if std is not None else "")


def markdown_table(summary, gain_points=5.0):
  from jax_ssl import metrics  # noqa: PLC0415  (TensorFlow and JAX only once flags parsed)
  lines = ["| source | run | linear top-1 | random init | gain (points) | kNN top-1 | "
           "random init | seeds | minutes (slowest run) | CPU minutes |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
  for (source, name), row in summary.items():
    if row["errors"] and not row["seeds"]:
      lines.append(f"| {source} | {name} | failed: {row['errors'][0]} | | | | | 0 | | |")
      continue
    linear, base = row["linear_top1"][0], row["baseline_linear_top1"][0]
    gain = 100 * (linear - base) if None not in (linear, base) else None
    error = metrics.gain_standard_error({"linear_top1": linear, "baseline_linear_top1": base,
                                         "test_images": row.get("test_images")})
    gain_text = "–" if gain is None else \
        f"{gain:+.1f}" + (f" ± {error:.1f}" if error is not None else "") + \
        (" ✓" if gain >= gain_points else "")
    minutes, cpu = ("–" if row[k] is None else f"{row[k]:.1f}" for k in ("minutes", "cpu_minutes"))
    lines.append(
        f"| {source} | {name} | {_cell(row['linear_top1'])} | "
        f"{_cell(row['baseline_linear_top1'])} | {gain_text} | {_cell(row['knn_top1'])} | "
        f"{_cell(row['baseline_knn_top1'])} | {row['seeds']} | {minutes} | {cpu} |")
  return "\n".join(lines) + (f"\n\n✓: at least {gain_points:g} points of linear top-1 over "
                             "the random-init encoder. ± after a gain: its standard error "
                             "from the number of test images alone, as if the two encoders "
                             "were tested on independent sets (on the same images it is "
                             "smaller; the spread over seeds comes on top). CPU minutes: the "
                             "run's CPU time over all its threads.\n") + stage_table(summary)


def stage_table(summary):
  """Linear top-1 of each ResNet stage against the random-init encoder's, and the best
  stage, for the runs that probed them; '' if none did."""
  stages = list(dict.fromkeys(k.removeprefix(STAGE_PREFIX) for row in summary.values()
                              for k in row if k.startswith(STAGE_PREFIX)))
  if not stages:
    return ""
  lines = ["", "Linear top-1 by ResNet stage (random init in brackets):", "",
           "| source | run | " + " | ".join(stages) + " | best |",
           "| --- | --- | " + "--- | " * len(stages) + "--- |"]
  for (source, name), row in summary.items():
    means = {s: row.get(STAGE_PREFIX + s, (None,))[0] for s in stages}
    bases = {s: row.get(f"baseline_{STAGE_PREFIX}{s}", (None,))[0] for s in stages}
    if all(m is None for m in means.values()):
      continue
    cells = [f"{means[s]:.3f} ({bases[s]:.3f})" if None not in (means[s], bases[s]) else "–"
             for s in stages]
    best = max((s for s in stages if means[s] is not None), key=means.get)
    lines.append(f"| {source} | {name} | " + " | ".join(cells) + f" | {best} |")
  return "\n".join(lines) + "\n"


def bar_chart(summary, path):
  """Linear and kNN top-1 per run, pretrained beside random init, one panel per source."""
  import matplotlib  # noqa: PLC0415
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415
  sources = list(dict.fromkeys(source for source, _ in summary))
  fig, axes = plt.subplots(len(sources), 1, squeeze=False,
                           figsize=(max(6.0, 1.2 * len(summary) / len(sources) + 2),
                                    3.2 * len(sources)))
  bars = (("linear_top1", "linear", "tab:blue"),
          ("baseline_linear_top1", "linear, random init", "lightsteelblue"),
          ("knn_top1", "kNN", "tab:orange"),
          ("baseline_knn_top1", "kNN, random init", "navajowhite"))
  for ax, source in zip(axes[:, 0], sources):
    names = [name for s, name in summary if s == source]
    for offset, (figure, label, colour) in enumerate(bars):
      means = [summary[(source, n)][figure][0] or 0.0 for n in names]
      errors = [summary[(source, n)][figure][1] or 0.0 for n in names]
      ax.bar([i + (offset - 1.5) * 0.2 for i in range(len(names))], means, 0.2, yerr=errors,
             label=label, color=colour, capsize=2)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.15)  # room for the legend above the bars
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("top-1")
    ax.set_title(source, fontsize=10)
  axes[0, 0].legend(fontsize=7, ncol=4, loc="upper center")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write_report(records, out, gain_points=5.0):
  with open(os.path.join(out, "results.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in records)
  summary = summarise(records)
  with open(os.path.join(out, "comparison.md"), "w") as f:
    f.write(markdown_table(summary, gain_points))
  bar_chart(summary, os.path.join(out, "comparison.png"))
  return summary


# -------------------------------------------------------------- the runs ----
def plan(config_files, sources, seeds, sweep):
  """Every (variant, source, seed) to run, sources outermost so a table fills by dataset."""
  return [(variant, source, seed) for source in (sources or [""])
          for variant in variants(config_files, sweep) for seed in seeds]


def compare(config_files, out, *, sources=(), seeds=(0,), sweep="", common=(), gain_points=5.0):
  """Runs the plan in order and writes the report after each run; returns the records."""
  runs = plan(config_files, list(sources), list(seeds), sweep)
  for variant in dict.fromkeys(v for v, _, _ in runs):  # each loads and takes its overrides
    apply_overrides(load_config(variant.config_file), variant.overrides + tuple(common))
  os.makedirs(out, exist_ok=True)
  records = []
  for number, (variant, source, seed) in enumerate(runs, 1):
    record = run_one(variant, source, seed, tuple(common),
                     run_dir(out, variant, source or "default", seed))
    records.append(record)
    print(f"[{number}/{len(runs)}] {_describe(record)}", flush=True)
    write_report(records, out, gain_points)
  return records


def _describe(record):
  what = f"{record['name']} on {record['source']}, seed {record['seed']}: "
  if "error" in record:
    return what + record["error"]
  return what + (f"linear {record.get('linear_top1', float('nan')):.3f} (random init "
                 f"{record.get('baseline_linear_top1', float('nan')):.3f}), kNN "
                 f"{record.get('knn_top1', float('nan')):.3f} in {record['seconds'] / 60:.1f} min")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  with cli.native_stderr_silenced():
    import tensorflow as tf  # noqa: PLC0415
  tf.config.set_visible_devices([], "GPU")  # tf.data runs on the host; JAX keeps the memory
  try:
    try:
      seeds = [int(s) for s in flags.FLAGS.seeds.split(",")]
    except ValueError:
      raise ValueError(f"--seeds={flags.FLAGS.seeds!r} is invalid: expected integers "
                       "separated by commas") from None
    common = [(f, parse_value(v)) for f, v in (split_assignment(s, "set")
                                               for s in flags.FLAGS.set)]
    compare(flags.FLAGS.config, flags.FLAGS.out, sources=flags.FLAGS.source, seeds=seeds,
            sweep=flags.FLAGS.sweep, common=common, gain_points=flags.FLAGS.gain_points)
  except ValueError as error:
    cli.fail(error)
  except Stopped as stop:
    print(stop, flush=True)
    sys.exit(143)
  with open(os.path.join(flags.FLAGS.out, "comparison.md")) as f:
    sys.stdout.write(f.read())


if __name__ == "__main__":
  app.run(main, flags_parser=cli.quiet_flags)
