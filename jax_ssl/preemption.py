"""Stopping at a step every process agrees on when the machine is about to be taken.

Cloud TPU VMs and SLURM send SIGTERM some time before they reclaim a machine. In a
multi-process run JAX's distributed runtime catches the signal on any process, tells
the others, and its preemption sync manager picks the first step none of them has
passed yet (`multihost_utils.reached_preemption_sync_point`). A single process catches
the signal itself and stops after the step under way.
"""
import signal
import threading

import jax
from absl import logging
from jax.experimental import multihost_utils


class SigtermWatch:
  """`watch(step)` is True at the step where every process should save and stop.

  Call it once per step on every process; `close()` gives SIGTERM its previous handler.
  """

  def __init__(self):
    self._received = False
    self._previous = None
    if jax.process_count() > 1:
      return  # the distributed runtime already holds SIGTERM
    if threading.current_thread() is not threading.main_thread():
      logging.warning("training outside the main thread: SIGTERM will not be caught")
      return
    self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

  def _on_sigterm(self, signum, frame):
    del signum, frame
    self._received = True

  def __call__(self, step):
    if jax.process_count() > 1:
      return multihost_utils.reached_preemption_sync_point(step)
    return self._received

  def close(self):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None
