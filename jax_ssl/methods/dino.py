"""DINO (Caron et al. 2021): self-distillation with no labels.

A student (backbone -> DINO head of `out_dim` outputs) sees every crop, global and local;
its EMA, the teacher (momentum from momentum_teacher to 1 on a cosine over the steps),
sees only the two global crops. The teacher's outputs are centred by an EMA of their
global-batch mean (`method_state['center']`, checkpointed with the run) and sharpened by
a low temperature, warmed up linearly over the first epochs; the student's are softened
by student_temp. The loss is the cross-entropy between them over every (teacher global
crop, other student crop) pair. The head's last layer is weight-normalised with unit-norm
output columns and frozen for the first epoch: its parameter group,
`config.optim.groups.last_layer`.

As the official main_dino.py: the backbone runs once per resolution (both global crops
together, then every local crop), the head once over all crops; the teacher's BN
normalises its own batch of global crops with its own statistics.
"""
import jax.numpy as jnp
import ml_collections

from jax_ssl import config as config_lib, losses, methods, models, optim
from jax_ssl.data import views
from jax_ssl.methods import common
from jax_ssl.models.heads import DINOHead

GLOBAL_GROUPS = ("global1", "global2")  # the teacher's crops, in its order
LOCAL_GROUP = "local"


def config():
  return ml_collections.ConfigDict(dict(
      out_dim=65536,
      hidden_dims=(2048, 2048),    # the official nlayers=3
      bottleneck_dim=256,
      use_bn_in_head=False,
      # True: the last layer's output norms are fixed to 1; False trains them (the official
      # help: better but less stable, its choice for ViT-S)
      norm_last_layer=True,
      momentum_teacher=0.996,      # teacher EMA rate at step 0, rising to 1 on a cosine
      student_temp=0.1,
      teacher_temp=0.04,
      warmup_teacher_temp=0.04,    # the teacher's temperature at epoch 0 ...
      warmup_teacher_temp_epochs=0,  # ... rising linearly to teacher_temp over these epochs
      center_momentum=0.9,
  ))


def multicrop_views(global_area=(0.4, 1.0), local_area=(0.05, 0.4), num_local=10):
  """DINO's crops (DataAugmentationDINO): two global ones at config.data.image_size, the
  first always blurred, the second rarely blurred and sometimes solarized, and
  `num_local` 96-pixel local ones blurred half the time. The defaults are ViT-S/16's."""
  global_crop = dict(crop_area_min=global_area[0], crop_area_max=global_area[1])
  return views.groups(
      global1=views.group(blur_prob=1.0, solarize_prob=0.0, **global_crop),
      global2=views.group(blur_prob=0.1, solarize_prob=0.2, **global_crop),
      local=views.group(count=num_local, size=96, crop_area_min=local_area[0],
                        crop_area_max=local_area[1], blur_prob=0.5, solarize_prob=0.0))


def tiny(c):
  c.dino.update(out_dim=64, hidden_dims=(64, 64), bottleneck_dim=32)
  c.data.views.local.update(count=min(c.data.views.local.count, 2), size=16)


def check(c, num_devices):
  del num_devices
  d = c.dino
  checks = [
      ("out_dim", d.out_dim, d.out_dim >= 1, ">= 1"),
      ("bottleneck_dim", d.bottleneck_dim, d.bottleneck_dim >= 1, ">= 1"),
      ("student_temp", d.student_temp, d.student_temp > 0, "> 0"),
      ("teacher_temp", d.teacher_temp, d.teacher_temp > 0, "> 0"),
      ("warmup_teacher_temp", d.warmup_teacher_temp, d.warmup_teacher_temp > 0, "> 0"),
      ("warmup_teacher_temp_epochs", d.warmup_teacher_temp_epochs,
       d.warmup_teacher_temp_epochs >= 0, ">= 0"),
      ("momentum_teacher", d.momentum_teacher, 0 <= d.momentum_teacher <= 1, "in [0, 1]"),
      ("center_momentum", d.center_momentum, 0 <= d.center_momentum <= 1, "in [0, 1]"),
  ]
  for field, value, ok, expected in checks:
    config_lib.require(ok, f"config.dino.{field}", value, expected)
  for field in ("use_bn_in_head", "norm_last_layer"):
    config_lib.require(isinstance(d[field], bool), f"config.dino.{field}", d[field],
                       "True or False")
  names = sorted(c.data.views.keys())
  expected_names = sorted(GLOBAL_GROUPS + (LOCAL_GROUP,))
  config_lib.require(names == expected_names, "config.data.views", names,
                     f"the groups {expected_names} (DINO's multi-crop)")
  for name in GLOBAL_GROUPS:
    count = c.data.views[name].count
    config_lib.require(count == 1, f"config.data.views.{name}.count", count,
                       "1: each global crop is its own group")
  sizes = [c.data.views[name].size for name in GLOBAL_GROUPS]
  config_lib.require(sizes[0] == sizes[1], f"config.data.views.{GLOBAL_GROUPS[1]}.size",
                     sizes[1], f"{sizes[0]!r}, the first global crop's size (one backbone "
                     "pass takes both)")


def create_model(c):
  d = c.dino
  head = DINOHead(hidden_dims=tuple(d.hidden_dims), bottleneck_dim=d.bottleneck_dim,
                  output_dim=d.out_dim, use_bn=d.use_bn_in_head,
                  norm_last_layer=d.norm_last_layer,
                  dtype=models.DTYPES[c.model.dtype])
  return common.EncoderWithHeads(models.create_backbone(c.model), head)


def init_state(run, variables, batch):
  del batch
  return {"target": common.init_target(variables),
          "center": jnp.zeros([run.config.dino.out_dim], jnp.float32)}


def teacher_temperature(config, epoch):
  """The teacher's temperature in `epoch` (counted from 0): the official schedule,
  np.linspace(warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs)[epoch]
  during the warm-up, then teacher_temp."""
  d = config.dino
  warmup = d.warmup_teacher_temp_epochs
  rise = (d.teacher_temp - d.warmup_teacher_temp) * epoch / max(warmup - 1, 1)
  return jnp.where(epoch < warmup, d.warmup_teacher_temp + rise, d.teacher_temp).astype(
      jnp.float32)


def momentum(config, step, total_steps):
  return optim.ema_momentum(step, total_steps, config.dino.momentum_teacher, "cosine")


def after_update(params, method_state, step, run):
  # As main_dino.py: the teacher moves after the student's step k with the rate of step k.
  return params, common.ema_target(params, method_state, momentum(run.config, step,
                                                                   run.total_steps))


def _encode(model, images, train):
  return model.backbone(images, train=train)


def _head(model, features, train):
  return model.projector(features, train=train)


def _flat(crops):
  """[B, n, ...] -> [B * n, ...], each example's crops adjacent."""
  return crops.reshape((-1,) + crops.shape[2:])


def student_logits(forward, global_crops, local_crops):
  """The student's logits [B, V, K] and backbone features [B, V, D] of every crop: the
  backbone once per resolution, the head once over all of them."""
  features = []
  for crops in (global_crops, local_crops):
    if crops.shape[1]:
      encoded = forward(_flat(crops), method=_encode)
      features.append(encoded.reshape(crops.shape[:2] + encoded.shape[1:]))
  features = jnp.concatenate(features, axis=1)
  logits = forward(_flat(features), method=_head)
  return logits.reshape(features.shape[:2] + logits.shape[1:]), features


def loss(params, state, batch, rng, run):
  d = run.config.dino
  global_crops = jnp.concatenate([common.stacked(batch, name) for name in GLOBAL_GROUPS],
                                 axis=1)
  forward = common.Forward(run, params, state["batch_stats"], rng)
  student, features = student_logits(forward, global_crops, common.stacked(batch, LOCAL_GROUP))
  method_state = state["method_state"]
  target = method_state["target"]
  teacher, target_stats = common.target_projections(run, target, _flat(global_crops))
  teacher = teacher.reshape(global_crops.shape[:2] + teacher.shape[1:])
  temperature = teacher_temperature(run.config, state["step"] // run.steps_per_epoch)
  result = common.global_loss(
      run, losses.dino_loss, student, teacher, replicated=(method_state["center"],),
      student_temp=d.student_temp, teacher_temp=temperature,
      center_momentum=d.center_momentum)
  metrics = {"embedding_std": losses.embedding_std(student[:, 0]),
             "teacher_entropy": result.teacher_entropy,
             # Each pair's cross-entropy is the teacher's entropy plus KL(teacher || student).
             "teacher_student_kl": result.loss - result.teacher_entropy,
             "teacher_temperature": temperature,
             "momentum": momentum(run.config, state["step"], run.total_steps)}
  new_state = {"target": {**target, "batch_stats": target_stats}, "center": result.center}
  return methods.LossResult(result.loss, metrics, forward.batch_stats, new_state,
                            features[:, 0])


METHOD = methods.register(methods.Method(
    name="dino", config=config, views=multicrop_views, augment=common.BYOL_AUGMENT,
    create_model=create_model, loss=loss, tiny=tiny, check=check, init_state=init_state,
    after_update=after_update,
    param_groups={"last_layer": methods.group(r"^projector/last_layer/", frozen_epochs=1.0),
                  **common.PATCH_EMBED_GROUP}))
