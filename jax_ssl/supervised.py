"""Labelled evaluation of a pretrained encoder: linear evaluation and fine-tuning.

  python main.py --config=configs/linear_eval.py --config.pretrained=<pretraining workdir> ...
  python main.py --config=configs/finetune.py --config.pretrained=<pretraining workdir> ...

config.task picks the protocol. linear_eval freezes the exported encoder (running BN
statistics, no gradient) and trains a linear classifier on its features; finetune trains
the encoder and the classifier together. Both train on random-resized crops and flips
and test on resized, centre-cropped images, with config.train (epochs, batch) and
config.optim (SGD with Nesterov momentum in the configs), and report top-1 and top-5 on
the test split. `config.eval.linear_mode='fast'` instead extracts features once without
augmentation and trains on them (the probe a pretraining run reports).

Data and model fields a config leaves unset are the pretraining run's.
"""
import functools
import os

import jax
import jax.numpy as jnp
import ml_collections
import optax
import tensorflow as tf
from absl import logging

from jax_ssl import checkpoint, config as config_lib, data, evaluate, export, metrics, models, optim
from jax_ssl import parallel, probe, train
from jax_ssl.data import labelled

ARCHITECTURE_FIELDS = ("arch", "width_multiplier", "cifar_stem")  # dtype may differ


def run(config, workdir):
  """Runs config.task ('linear_eval' or 'finetune') on config.pretrained; returns its metrics."""
  # ---- Everything is checked before anything compiles. ----
  folder = find_encoder(config.pretrained)
  resolve_config(config, folder)
  config_lib.validate(config, num_devices=jax.device_count(), num_processes=jax.process_count())
  source = data.make_source(config.data)
  require_labels(source, config)
  mesh = parallel.make_mesh()
  backbone, pretrained, info = export.load_encoder(folder, mesh)
  logging.info("%s of %s (%s, step %d) on %s", config.task, folder, info["model"]["arch"],
               info["step"], config.data.source)
  checkpoint.write_config(workdir, config)
  writer = metrics.MetricWriter(workdir)

  encoders = {"": pretrained}
  if config.eval.baseline:  # the same protocol on the randomly initialised encoder
    encoders["baseline_"] = random_encoder(backbone, config, mesh)
  results, last_step = {}, 0
  for prefix, variables in encoders.items():
    accuracies, last_step = evaluate_one(backbone, variables, config, source, mesh, writer, prefix)
    results.update(accuracies)
  writer.write(last_step, results)
  metrics.print_results(results)
  return results


def evaluate_one(backbone, variables, config, source, mesh, writer, prefix):
  """({prefix}{linear|finetune}_top{1,5} and {prefix}skipped_images, training steps) of one
  encoder; skipped_images counts the images of the passes over the splits (the test split,
  and in fast mode the train split) that failed to decode. With config.eval.probe_layers
  also {prefix}linear_top1_<stage>, the fast probe on each ResNet stage."""
  name = "linear" if config.task == "linear_eval" else "finetune"
  if config.task == "linear_eval" and config.eval.linear_mode == "fast":
    (accuracies, skipped), steps = fast_linear_probe(backbone, variables, config, source,
                                                     mesh), 0
  else:
    def log(step, values):
      writer.write(step, {prefix + k: v for k, v in values.items()})

    (accuracies, skipped), steps = train_classifier(backbone, variables, config, source, mesh,
                                                    frozen=config.task == "linear_eval", log=log)
  results = {**{f"{prefix}{name}_top{k}": v for k, v in accuracies.items()},
             f"{prefix}skipped_images": skipped}
  if config.eval.probe_layers:  # linear_eval only (config.validate)
    results.update(stage_probes(backbone, variables, config, source, mesh, prefix))
  return results, steps


# ----------------------------------------------------------- bad input ----
def find_encoder(pretrained):
  """The export folder of `pretrained`, exporting its latest checkpoint if need be."""
  folder = export.find_export(pretrained)
  if folder is not None:
    return folder
  if not tf.io.gfile.isdir(pretrained):
    raise FileNotFoundError(f"config.pretrained={pretrained!r} does not exist; expected the "
                            "workdir of a pretraining run")
  if tf.io.gfile.isdir(os.path.join(pretrained, "checkpoints")):
    return export.export_from_workdir(pretrained)
  found = sorted(tf.io.gfile.listdir(pretrained))
  raise FileNotFoundError(
      f"config.pretrained={pretrained!r} holds {found or 'nothing'}: no exported encoder "
      f"({export.EXPORT_DIR}/{export.INFO_FILE}) and no checkpoints/; expected the workdir of a "
      "pretraining run that saved at least one checkpoint")


def resolve_config(config, folder):
  """Fills unset model and data fields from the export and the pretraining run's config.json;
  a model field set to something else than the exported architecture is an error."""
  info = export.read_info(folder)
  for field in ARCHITECTURE_FIELDS:
    wanted = config.model.get(field)
    if wanted is not None and wanted != info["model"][field]:
      raise ValueError(
          f"config.model.{field}={wanted!r} does not match the encoder exported in {folder}, "
          f"which is {info['model']}; leave config.model unset to use the exported one")
  config_lib.fill_unset(config.model, ml_collections.ConfigDict(info["model"]))
  run_config = os.path.join(os.path.dirname(folder), "config.json")
  pretraining = config_lib.base_config()
  if tf.io.gfile.exists(run_config):
    pretraining = export.read_run_config(os.path.dirname(folder))
  pretraining.data.source, pretraining.data.image_size = info["pretrained_on"], info["image_size"]
  config_lib.fill_unset(config.data, pretraining.data)
  config_lib.fill_unset(config.data, config_lib.base_config().data)  # fields older runs lack


def require_labels(source, config):
  if source.num_classes < 2:
    raise ValueError(
        f"config.data.source={config.data.source!r} has {source.num_classes} class(es); "
        f"config.task={config.task!r} needs labelled train and test splits with at least 2 "
        "classes (a folder source: one subfolder per class under train/ and test/)")


def random_encoder(backbone, config, mesh):
  size = config.data.image_size
  init = jax.jit(lambda: backbone.init(jax.random.key(config.seed), jnp.zeros((1, size, size, 3)),
                                       train=False), out_shardings=parallel.replicated(mesh))
  variables = init()
  return {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}


# ------------------------------------------------------------- fast mode ----
def fast_linear_probe(backbone, variables, config, source, mesh):
  """(test {1: top-1, 5: top-5}, images skipped) of the probe on features kept sharded."""
  encode = jax.jit(lambda images: backbone.apply(variables, images, train=False))
  train = evaluate.split_features(encode, config, source, "train", mesh)
  test = evaluate.split_features(encode, config, source, "test", mesh)
  skipped = len(train.skipped) + len(test.skipped)
  if config.data.label_fraction < 1:
    train = evaluate.label_subset(train, config.data.label_fraction, config.seed)
  return evaluate.config_linear_probe(train, test, source.num_classes, config.eval), skipped


def stage_probes(backbone, variables, config, source, mesh, prefix):
  """{prefix}linear_top1_<stage> of the fast probe on each ResNet stage of the encoder."""
  stages = jax.jit(functools.partial(models.stage_features, backbone))
  return evaluate.stage_probes(lambda images: stages(variables, images), config, source, mesh,
                               prefix, label_fraction=config.data.label_fraction)


# ------------------------------------------------ linear eval, fine-tune ----
def apply_with_stats(module, params, stats, inputs, train_mode, rng=None):
  """(outputs, new BN statistics): updated in training mode, unchanged otherwise. `rng` is
  the 'dropout' key of a ViT's stochastic depth in training mode."""
  variables = {"params": params, "batch_stats": stats}
  if not train_mode:
    return module.apply(variables, inputs, train=False), stats
  rngs = {} if rng is None else {"dropout": rng}
  outputs, updates = module.apply(variables, inputs, train=True, mutable=["batch_stats"],
                                  rngs=rngs)
  return outputs, updates["batch_stats"]


def make_train_step(backbone, head, tx, frozen, mesh, seed=0):
  trainable = ("head",) if frozen else ("backbone", "head")

  def train_step(state, batch):
    # A fine-tuned ViT's stochastic depth: a key per step, so a resumed run draws the same.
    rng = jax.random.fold_in(jax.random.key(seed), state["step"])

    def loss_of(params):
      params = {**state["params"], **params}
      stats = state["batch_stats"]
      features, backbone_stats = apply_with_stats(backbone, params["backbone"], stats["backbone"],
                                                  batch["image"], not frozen, rng)
      if frozen:
        features = jax.lax.stop_gradient(features)
      logits, head_stats = apply_with_stats(head, params["head"], stats["head"], features, True)
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
      return loss, {"backbone": backbone_stats, "head": head_stats}

    params = {k: state["params"][k] for k in trainable}
    (loss, batch_stats), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    updates, opt_state = tx.update(grads, state["opt_state"], params)
    params = {**state["params"], **optax.apply_updates(params, updates)}
    new_state = {"params": params, "batch_stats": batch_stats, "opt_state": opt_state,
                 "step": state["step"] + 1}
    return new_state, {"train_loss": loss}

  replicated = parallel.replicated(mesh)
  return jax.jit(train_step, donate_argnums=0, out_shardings=(replicated, replicated))


def train_classifier(backbone, variables, config, source, mesh, *, frozen, log):
  """Trains a linear head (and the backbone unless `frozen`).

  Returns (the test split's {1: top-1, 5: top-5}, its images skipped) and the number of
  steps. Training images that fail to decode are skipped too, counted as skipped_images in
  the training log.
  """
  keep, num_labelled = None, source.num_train
  if config.data.label_fraction < 1:
    shard = labelled.shard_labels(source, jax.process_index(), jax.process_count())
    keep = labelled.label_subset(shard, config.data.label_fraction, config.seed)
    num_labelled = parallel.process_sum(keep.sum())
  steps_per_epoch, total_steps, warmup_steps, last_step = train.schedule_lengths(
      config, num_labelled)
  schedule = optim.warmup_cosine(optim.scaled_learning_rate(config.optim, config.train.batch_size),
                                 warmup_steps, total_steps)
  tx = optim.make_optimizer(config.optim, schedule)
  head = probe.LinearClassifier(source.num_classes)
  state = init_state(variables, head, tx, frozen, models.backbone_feature_dim(config.model), mesh)
  train_step = make_train_step(backbone, head, tx, frozen, mesh, config.seed)
  batches = labelled.labelled_batches(
      config.data, source, local_batch_size=parallel.local_batch_size(config.train.batch_size),
      seed=config.seed, keep=keep, process_index=jax.process_index(),
      process_count=jax.process_count())
  logging.info("%d labelled examples, %d steps (%d per epoch)", num_labelled, last_step,
               steps_per_epoch)
  for step, batch in zip(range(1, last_step + 1), train.device_prefetch(batches, mesh)):
    state, step_metrics = train_step(state, batch)
    if step % config.train.log_every_steps == 0 or step == last_step:
      logged = {"train_loss": float(step_metrics["train_loss"]),
                "learning_rate": float(schedule(step - 1)), "epoch": step / steps_per_epoch,
                "skipped_images": parallel.process_sum(batches.skipped)}
      log(step, logged)
      metrics.print_line(f"step {step}/{last_step} | " + " | ".join(
          f"{k} {v:.4g}" for k, v in logged.items()))
  return test_accuracies(backbone, head, state, config, source, mesh), last_step


def init_state(variables, head, tx, frozen, feature_dim, mesh):
  def init(variables):
    variables = jax.tree.map(jnp.copy, variables)  # the train step donates its state
    head_variables = probe.init_classifier(head, feature_dim)
    params = {"backbone": variables["params"], "head": head_variables["params"]}
    trainable = {"head": params["head"]} if frozen else params
    return {"params": params, "opt_state": tx.init(trainable), "step": jnp.zeros((), jnp.int32),
            "batch_stats": {"backbone": variables["batch_stats"],
                            "head": head_variables["batch_stats"]}}

  return jax.jit(init, out_shardings=parallel.replicated(mesh))(variables)


def test_accuracies(backbone, head, state, config, source, mesh):
  def classify(images):
    variables = {k: {"params": state["params"][k], "batch_stats": state["batch_stats"][k]}
                 for k in ("backbone", "head")}
    features = backbone.apply(variables["backbone"], images, train=False)
    return head.apply(variables["head"], features, train=False)

  logits = evaluate.split_features(jax.jit(classify), config, source, "test", mesh)
  return evaluate.topk_accuracies(logits, ks=(1, 5)), len(logits.skipped)
