"""What a run tells its user: workdir/metrics.jsonl, TensorBoard events, a console line."""
import json
import math
import os
import time

import jax
import numpy as np
import tensorflow as tf
from absl import logging


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


class Progress:
  """Measures images/s between console lines and estimates the time left."""

  def __init__(self, total_steps, global_batch_size, start_step):
    self.total_steps = total_steps
    self.batch = global_batch_size
    self.restart(start_step)

  def restart(self, step):
    """Starts measuring from `step`, e.g. once the first step has compiled."""
    self._last_step, self._last_time = step, time.perf_counter()
    self._steps_per_sec = 0.0

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
    eta = (self.total_steps - step) / max(self._steps_per_sec, 1e-9)
    parts = [f"step {step}/{self.total_steps}"]
    parts += [f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float)]
    parts.append(f"eta {_duration(eta)}")
    print_line(" | ".join(parts))


def print_line(message):
  """A console line from process 0 (also sent to the absl log)."""
  if jax.process_index() == 0:
    logging.info(message)
    print(message, flush=True)
