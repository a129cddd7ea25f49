"""The one training loop. It knows nothing of any method: the method module
builds the model, computes the loss and updates its own state (see step.py)."""
import collections
import functools
import itertools

import jax
import numpy as np

from jax_ssl import checkpoint, config as config_lib, data, evaluate, export, methods, metrics
from jax_ssl import optim, parallel, preemption, probe, step as step_lib


def schedule_lengths(config, num_train):
  """Steps per epoch, total steps of the full run, warm-up steps, and the last step to run.

  The run is `train.num_steps` long when set (the same on a folder of 1,000 images as on
  ImageNet), else `train.num_epochs` epochs; likewise its warm-up."""
  t = config.train
  steps_per_epoch = num_train // t.batch_size
  if steps_per_epoch == 0:
    raise ValueError(f"config.train.batch_size={t.batch_size} is larger than the training "
                     f"split of {config.data.source} ({num_train} examples)")
  total = t.num_steps or t.num_epochs * steps_per_epoch
  warmup = min(t.warmup_steps or int(t.warmup_epochs * steps_per_epoch), total)
  last = min(total, t.max_steps) if t.max_steps else total
  return steps_per_epoch, total, warmup, last


def eval_interval(config, steps_per_epoch):
  """Steps between evaluations during training; 0: only at the end."""
  return config.eval.every_steps or int(config.eval.every_epochs * steps_per_epoch)


def device_prefetch(batches, mesh, size=2):
  """Keeps `size` global batches on the devices ahead of the step that needs them."""
  queue = collections.deque()
  for local in batches:
    queue.append(parallel.global_batch(local, mesh))
    if len(queue) > size:
      yield queue.popleft()
  while queue:
    yield queue.popleft()


class NonFiniteLossError(FloatingPointError):
  pass


def _check_finite(step, step_metrics, manager, keys=("loss", "grad_norm", "param_norm")):
  values = jax.device_get({k: step_metrics[k] for k in keys})
  if all(np.isfinite(v) for v in values.values()):
    return
  manager.wait_until_finished()
  latest = manager.latest_step()
  kept = f"the last good checkpoint is step {latest}" if latest is not None else \
      "no checkpoint had been written yet"
  raise NonFiniteLossError(
      f"non-finite training values at step {step}: "
      + ", ".join(f"{k}={v}" for k, v in values.items())
      + f"; stopped, and {kept} in {manager.directory}")


def _skipped_images(host_batches):
  """Images every process has dropped as undecodable so far."""
  return parallel.process_sum(host_batches.skipped)


def train_and_evaluate(config, workdir):
  """Pretrains the method of `config` in `workdir` (resuming if it holds a checkpoint).

  Returns the last step's metrics and the final evaluation as one dict.
  """
  # ---- Validate everything before building or compiling anything. ----
  config_lib.validate(config, num_devices=jax.device_count(),
                      num_processes=jax.process_count())
  source = data.make_source(config.data)
  steps_per_epoch, total_steps, warmup_steps, last_step = schedule_lengths(
      config, source.num_train)
  manager = checkpoint.make_manager(workdir, config.train)
  checkpoint.check_resumable(workdir, config, manager)
  mesh = parallel.make_mesh()
  augment_path = data.device.resolve_path(config.data, source, jax.default_backend())
  resident = (data.device.resident_dataset(source, mesh, config.train.batch_size)
              if augment_path == "resident" else None)

  # ---- Model, optimizer, state. ----
  method, run, tx, schedule = step_lib.make_run(
      config, mesh, steps_per_epoch=steps_per_epoch, total_steps=total_steps,
      warmup_steps=warmup_steps, num_train=source.num_train)
  peak_lr = optim.scaled_learning_rate(config.optim, config.train.batch_size)
  encoder = method.encoder(config)
  state = step_lib.create_state(run, method, tx)
  state = probe.add_online_probe(state, config, source.num_classes,
                                 step_lib.encoder_feature_dim(encoder, config), total_steps, mesh)

  # ---- Checkpoint: resume from the latest one in workdir. ----
  restored = checkpoint.restore_latest(manager, checkpoint.abstract_like(state))
  state = restored if restored is not None else state
  start_step = int(jax.device_get(state["step"]))
  checkpoint.write_config(workdir, config)
  metrics.forget_lost_steps(workdir, start_step)
  writer = metrics.MetricWriter(workdir)
  encoder_of = step_lib.make_encoder(encoder)
  stages_of = step_lib.make_encoder(encoder, stages=True) if config.eval.probe_layers else None
  metrics.print_line(f"{config.method} on {config.data.source}: {last_step} steps "
                     f"({last_step / steps_per_epoch:.3g} epochs of {steps_per_epoch}), "
                     f"peak lr {peak_lr:.4g}, "
                     f"{jax.device_count()} device(s), augmentation on the {augment_path} path")
  if restored is not None:
    metrics.print_line(f"resuming from the checkpoint of step {start_step} of {last_step}")

  def report(step, results):
    writer.write(step, results)
    metrics.print_results(results)
    return results

  def run_evaluation(step, prefix=""):
    what = "the random-init encoder" if prefix else f"the encoder at step {step}"
    with metrics.EvalProgress(f"evaluating {what}", source, config.eval) as progress:
      results = evaluate.evaluate_encoder(
          progress.counting(encoder_of(state)), config, source, mesh, prefix, pairs=pairs,
          encode_stages=stages_of(state) if stages_of else None)
    return report(step, results)

  # ---- The loop. ----
  prepare = data.device.make_prepare(config.data, mesh, config.seed, augment_path,
                                     config.train.batch_size)
  train_step = step_lib.make_train_step(run, method, tx, schedule, prepare, layout=state)
  epoch_start = step_lib.make_epoch_start(run, method, tx)

  def epoch_context(state):
    return methods.EpochContext(run, lambda: evaluate.features_by_index(
        encoder_of(state), config, source, mesh))

  if resident is not None:  # the devices hold the data: the host sends nothing
    host_batches, batches = None, itertools.repeat(resident)
  else:
    host_batches = data.pretrain_batches(
        config.data, source, local_batch_size=parallel.local_batch_size(config.train.batch_size),
        seed=config.seed, process_index=jax.process_index(),
        process_count=jax.process_count(), start_step=start_step,
        colour_on_host=augment_path == "host")
    batches = device_prefetch(host_batches, mesh)
  first_batch = next(batches)
  batches = itertools.chain([first_batch], batches)
  pairs = evaluate.positive_pairs(  # alignment, at every evaluation
      first_batch if prepare is None else jax.jit(prepare)(first_batch, start_step),
      config.data)
  final = {}
  if start_step == 0 and config.eval.baseline:
    final.update(run_evaluation(0, prefix="baseline_"))
  progress = metrics.Progress(last_step, config.train.batch_size, start_step)
  eval_every = eval_interval(config, steps_per_epoch)
  # With skipping on, a non-finite loss is expected; non-finite parameters never are.
  skipping = config.train.skip_nonfinite_steps
  check_finite = functools.partial(_check_finite, manager=manager, keys=(
      ("param_norm",) if skipping else ("loss", "grad_norm", "param_norm")))
  previous = None
  step = start_step
  stop_requested = preemption.SigtermWatch()
  stopping = False
  metrics.print_line("compiling the training step")
  try:
    for step, batch in zip(range(start_step + 1, last_step + 1), batches):
      if epoch_start is not None and (step - 1) % steps_per_epoch == 0:
        state = epoch_start(state, (step - 1) // steps_per_epoch, epoch_context(state))
      state, step_metrics = train_step(state, batch)
      if step == start_step + 1:  # images/s and ETA should not count compilation
        jax.block_until_ready(step_metrics)
        progress.restart(step)
      if previous is not None:  # one step behind, so the check does not stall the devices
        check_finite(*previous)
      previous = (step, step_metrics)
      progress.advance(step)
      if step % config.train.log_every_steps == 0 or step == last_step:
        logged = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
        logged.update(images_per_sec=progress.tick(step), epoch=step / steps_per_epoch)
        if host_batches is not None:
          logged["skipped_images"] = float(_skipped_images(host_batches))
        writer.write(step, logged)
        progress.line(step, logged)
        final.update(logged)
      if config.eval.online_probe and (step % steps_per_epoch == 0 or step == last_step):
        final.update(report(step, probe.online_test_top1(state, encoder_of, config, source, mesh)))
      stopping = stop_requested(step)  # every process, every step, as the sync requires
      if step % config.train.checkpoint_every_steps == 0 or step == last_step or stopping:
        check_finite(step, step_metrics)
        previous = None  # checked already
        checkpoint.save(manager, step, state)
      if stopping:
        break
      if eval_every and step % eval_every == 0 and step != last_step:
        run_evaluation(step)
    if previous is not None:
      check_finite(*previous)
  finally:
    progress.close()
    stop_requested.close()
    # A failing or stopping run still completes the checkpoint it was writing.
    manager.wait_until_finished()
  if stopping:
    metrics.print_line(f"SIGTERM: stopped at step {step} with a checkpoint; run the same "
                       "command again to resume")
    return {**final, "stopped_at_step": step}
  # Exported before the final evaluation, so that a failing evaluation never costs it.
  metrics.print_line(f"exporting the encoder to {export.export_dir(workdir)}")
  export.export_encoder(encoder.variables(state["params"], state["batch_stats"]), config,
                        workdir, step, encoder)
  final.update(run_evaluation(step))
  return final
