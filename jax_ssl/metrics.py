"""What a run tells its user: workdir/metrics.jsonl, TensorBoard events, the console."""
import json
import math
import os
import sys
import threading
import time

import jax
import numpy as np
import tensorflow as tf
import tqdm

from jax_ssl import config as config_lib


def _plain(value):
  value = np.asarray(value).item()
  return value if isinstance(value, (int, bool)) or math.isfinite(value) else str(value)


class MetricWriter:
  """Appends one JSON object per call to metrics.jsonl and mirrors scalars to TensorBoard.

  Only process 0 writes; the other processes' writers do nothing.
  """

  def __init__(self, workdir):
    self.enabled = jax.process_index() == 0
    if not self.enabled:
      return
    tf.io.gfile.makedirs(workdir)
    self._path = os.path.join(workdir, "metrics.jsonl")
    self._summary = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))

  def write(self, step, metrics):
    if not self.enabled:
      return
    record = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
    with tf.io.gfile.GFile(self._path, "a") as f:
      f.write(json.dumps(record) + "\n")
    with self._summary.as_default(step=int(step)):
      for key, value in record.items():
        if key != "step" and isinstance(value, (int, float)):
          tf.summary.scalar(key, value)
    self._summary.flush()


def forget_lost_steps(workdir, resumed_step):
  """Drops the records of steps a killed run took after its last checkpoint.

  The resumed run takes those steps again, so metrics.jsonl keeps one record per step;
  a run that starts from step 0 starts a new file.
  """
  path = os.path.join(workdir, "metrics.jsonl")
  if jax.process_index() != 0 or not tf.io.gfile.exists(path):
    return
  records = read_metrics(workdir) if resumed_step > 0 else []
  kept = [r for r in records if r["step"] <= resumed_step]
  with tf.io.gfile.GFile(path + ".tmp", "w") as f:
    f.write("".join(json.dumps(r) + "\n" for r in kept))
  tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def read_metrics(workdir):
  """The records of metrics.jsonl, in order (for tests and scripts)."""
  with tf.io.gfile.GFile(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f if line.strip()]


def _duration(seconds):
  seconds = int(max(seconds, 0))
  hours, rest = divmod(seconds, 3600)
  return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


# ---------------------------------------------------------------- console ----
# Process 0 alone prints. On a terminal, training and evaluations draw a progress bar
# (tqdm) under the printed lines; elsewhere (a log file, a pipe, a test) training prints a
# plain line every log_every_steps instead, and nothing is redrawn.
def _prints():
  return jax.process_index() == 0


def interactive():
  """Whether stdout is a terminal a person watches (progress bars) rather than a log."""
  return sys.stdout.isatty()


def _bar(**kwargs):
  """A tqdm bar on stdout when process 0 prints to a terminal, else None."""
  if not (_prints() and interactive()):
    return None
  return tqdm.tqdm(file=sys.stdout, dynamic_ncols=True, **kwargs)


COUNTS = ("skipped_images", "test_images")  # evaluation figures that count images


def print_results(results):
  """Evaluation results as one console line: fractions and diagnostics to 4 decimals,
  counts (skipped and test images) as whole numbers."""
  print_line(" | ".join(f"{k} {int(v)}" if k.endswith(COUNTS) else f"{k} {v:.4f}"
                        for k, v in results.items()))


def print_line(message):
  """A console line from process 0, on stdout, once; above the progress bar if one is drawn."""
  if _prints():
    tqdm.tqdm.write(message, file=sys.stdout)
    sys.stdout.flush()


class Progress:
  """The training console: measures images/s between updates and the time left, and shows
  them with the step and the loss on a progress bar, or as a line every log_every_steps."""

  def __init__(self, total_steps, global_batch_size, start_step):
    self.total_steps = total_steps
    self.batch = global_batch_size
    self._bar = None
    self._mark(start_step)

  def _mark(self, step):
    self._last_step, self._last_time = step, time.perf_counter()
    self._steps_per_sec = 0.0

  def restart(self, step):
    """Starts measuring from `step`, once the first step has compiled; the bar starts here."""
    self._mark(step)
    if self._bar is None:
      self._bar = _bar(total=self.total_steps, initial=step, desc="training", unit="step")

  def advance(self, step):
    """Moves the bar to `step` (every step: tqdm redraws at most 10 times a second)."""
    if self._bar is not None:
      self._bar.update(step - self._bar.n)

  def tick(self, step):
    """Returns images/s since the last tick (call after the step's results are ready)."""
    if step == self._last_step:
      return 0.0
    now = time.perf_counter()
    elapsed = max(now - self._last_time, 1e-9)
    rate = (step - self._last_step) * self.batch / elapsed
    self._steps_per_sec = (step - self._last_step) / elapsed
    self._last_step, self._last_time = step, now
    return rate

  def line(self, step, metrics):
    if self._bar is not None:
      self.advance(step)
      self._bar.set_postfix_str(
          f"loss {metrics.get('loss', float('nan')):.4g} | "
          f"{metrics.get('images_per_sec', 0.0):,.0f} images/s")
      return
    eta = (self.total_steps - step) / max(self._steps_per_sec, 1e-9)
    parts = [f"step {step}/{self.total_steps}"]
    parts += [f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float)]
    parts.append(f"eta {_duration(eta)}")
    print_line(" | ".join(parts))

  def close(self):
    if self._bar is not None:
      self._bar.close()
      self._bar = None


class EvalProgress:
  """Says that an evaluation starts and, on a terminal, counts the images it encodes on a
  bar; once they are all encoded the bar says that kNN and the linear probe run.

    with metrics.EvalProgress("evaluating ...", source, config.eval) as progress:
      results = evaluate.evaluate_encoder(progress.counting(encode), ...)
  """

  def __init__(self, description, source, eval_config):
    train = source.num_train
    if eval_config.max_train_examples:
      train = min(train, eval_config.max_train_examples)
    self.description, self.total = description, train + source.num_test
    self._bar = None
    self._done = threading.Event()

  def __enter__(self):
    print_line(f"{self.description}: features of {self.total:,} images, kNN, linear probe")
    self._bar = _bar(total=self.total, desc="evaluating", unit="image", leave=False)
    return self

  def counting(self, encode):
    """`encode`, counting the images of each call on the bar."""
    def counted(images):
      bar = self._bar
      if bar is not None and bar.n < bar.total:
        bar.update(min(images.shape[0], bar.total - bar.n))
        if bar.n == bar.total:
          bar.set_postfix_str("kNN and linear probe")
          self._keep_clock_moving()
      return encode(images)
    return counted

  def _keep_clock_moving(self):
    """Redraws the bar every second while nothing counts on it, so its clock shows time pass."""
    def redraw(bar=self._bar):
      while not self._done.wait(1.0):
        bar.refresh()
    threading.Thread(target=redraw, daemon=True).start()

  def __exit__(self, *exc):
    self._done.set()
    if self._bar is not None:
      self._bar.close()
      self._bar = None


STAGE_PREFIX = "linear_top1_"  # the probe on each ResNet stage: linear_top1_layer1, ...


def print_summary(results, workdir, seconds, exported):
  """The run's closing lines: pretrained against random-init accuracy, wall time, files."""
  if not _prints():
    return
  lines = [f"done in {_duration(seconds)}"
           + (f", stopped at step {results['stopped_at_step']}"
              if "stopped_at_step" in results else "")]
  stages = [key for key in results if key.startswith(STAGE_PREFIX)]
  for key in ("linear_top1", *stages, "knn_top1", "finetune_top1"):
    if key in results:
      baseline = results.get(f"baseline_{key}")
      against = f"   (random init {baseline:.3f})" if baseline is not None else ""
      name = f"  {key.removeprefix(STAGE_PREFIX)}" if key in stages else key
      lines.append(f"  {name:<14} {results[key]:.3f}{against}")
  if results.get("test_images") and "linear_top1" in results:
    error = standard_error_points(results["linear_top1"], results["test_images"])
    lines.append(f"  {'test images':<14} {results['test_images']:,}   (one standard error "
                 f"of linear_top1: {error:.1f} points)")
  absolute = workdir if "://" in workdir else os.path.abspath(workdir)
  if exported:
    export = os.path.join(absolute, "export")
    lines.append(f"  encoder        {export}  (in PyTorch: jax_ssl.torch_model({export!r}))")
  lines.append(f"  metrics        {os.path.join(absolute, 'metrics.jsonl')}  (TensorBoard: "
               f"tensorboard --logdir {os.path.join(absolute, 'tensorboard')})")
  lines += little_gain_warning(results)  # last, where the eye ends
  print_line("\n".join(lines))


MIN_GAIN_POINTS = 2.0


def standard_error_points(accuracy, count):
  """One binomial standard error, in points, of an accuracy measured on `count` images."""
  return 100 * math.sqrt(accuracy * (1 - accuracy) / count)


def gain_standard_error(results):
  """The standard error, in points, of linear top-1's gain over the random-init encoder that
  the test set's size alone gives, as if the two were measured on independent test sets (on
  the same images it is smaller); None without the figures."""
  count = results.get("test_images")
  if not count or "linear_top1" not in results or "baseline_linear_top1" not in results:
    return None
  return math.hypot(standard_error_points(results["linear_top1"], count),
                    standard_error_points(results["baseline_linear_top1"], count))


def little_gain_warning(results):
  """Lines that warn when pretraining gained under MIN_GAIN_POINTS of linear top-1 over the
  random-init encoder, with the usual causes, or note a larger gain that the test set is too
  small to tell from chance; none when it gained more or had no baseline."""
  if "linear_top1" not in results or "baseline_linear_top1" not in results:
    return []
  gain = 100 * (results["linear_top1"] - results["baseline_linear_top1"])
  error = gain_standard_error(results)
  if gain >= MIN_GAIN_POINTS:
    if error is None or gain >= 2 * error:
      return []
    return [f"  note: a gain of {gain:+.1f} points is under two standard errors ({error:.1f} "
            f"points each) of what {results['test_images']:,} test images can tell apart: "
            "repeat with other seeds (python -m jax_ssl.compare --seeds=0,1,2) or test on "
            "more images"]
  epochs = f" ({results['epoch']:.3g} epochs)" if "epoch" in results else ""
  return [
      f"  warning: pretraining gained {gain:+.1f} points of linear top-1 over the random-init "
      "encoder; likely causes:",
      *collapse_cause(results),
      f"    - too few steps{epochs}: raise config.train.num_steps (or num_epochs)",
      "    - an augmentation that leaves a shortcut: colour or background tells images apart "
      "without their content; keep config.data.augment.color_strength at 1.0 with "
      "grayscale_prob > 0, and crops that can cut the background away",
      "    - lighting that tells views apart: over a gradient across the image two crops "
      f"match by their light; give each view its own ({config_lib.lighting_robust_flags()}, "
      "jax_ssl.config.use_lighting_robust_views)",
      "    - a learning rate far from the method's: try config.optim.base_lr x 0.3 and x 3",
  ]


def collapse_cause(results):
  """The cause line for features that use under half the dimensions the random-init
  encoder's do (their effective rank), a collapse the loss alone may not show."""
  rank, baseline = results.get("effective_rank"), results.get("baseline_effective_rank")
  if rank is None or baseline is None or rank >= baseline / 2:
    return []
  return [f"    - the features collapsed: their effective rank is {rank:.1f}, the random-init "
          f"encoder's {baseline:.1f}; the loss was met without telling the images apart"]
