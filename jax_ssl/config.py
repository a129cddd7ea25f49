"""The schema every config file starts from, and its validation.

A config file calls `base_config()` and overrides what its recipe changes; a
field that is not in the schema is an error, so a typo never goes unnoticed.
"""
import ml_collections
from ml_collections.config_dict import placeholder

from jax_ssl import cli, models, optim
from jax_ssl.data import views as views_lib

SOURCE_PREFIXES = ("builtin:", "tfds:", "folder:")
TASKS = ("pretrain", "linear_eval", "finetune")
LINEAR_MODES = ("standard", "fast")
ON_BAD_FILE = ("skip", "error")


def base_config(method=None):
  """The schema, with the sections of `method` (a registered name) when given: its own
  section `config.<method>`, its views `config.data.views` and its parameter groups
  `config.optim.groups`, each with the paper's defaults (see jax_ssl/methods)."""
  c = ml_collections.ConfigDict()
  c.task = "pretrain"  # pretrain | linear_eval | finetune: what main.py runs
  c.pretrained = ""    # linear_eval and finetune: the pretraining workdir (or its export/)
  c.method = ""        # set by base_config(method)
  c.seed = 0

  c.model = ml_collections.ConfigDict(dict(
      arch="resnet50",
      width_multiplier=1.0,
      cifar_stem=False,         # 3x3 stride-1 stem and no max-pool, for 32-pixel images
      zero_init_last_bn=False,  # zero-init each residual block's last BN scale
      dtype="float32",          # activations; params, optimizer state and BN stats stay float32
      # ViTs (arch 'vit_tiny', 'vit_small', 'vit_base', 'vit_large'; models/vit.py):
      patch_size=16,
      image_size=224,           # the training input size: its patch grid sets the position
                                # table, which other sizes (multi-crop) interpolate
      pos_embed="learned",      # learned | sincos (fixed 2-D sin-cos: MoCo v3, MAE)
      drop_path_rate=0.0,       # stochastic depth of the last block, rising from 0 at the first
      frozen_patch_embed=False,  # stop-gradient on the random patch projection (MoCo v3)
      features="cls",           # cls | mean_patch | cls_last4 | cls_mean_patch (DINO's probes)
      num_heads=0,              # 0: the size's (Tiny 3, Small 6, Base 12, Large 16)
      depth=0,                  # blocks; 0: the size's (12, Large 24); fewer for CPU tests
      weight_init="trunc_normal",  # trunc_normal (timm, DINO) | xavier (MoCo v3, MAE)
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
      # The shared augmentation; each view group (below) may set its own crop area and
      # op probabilities.
      augment=ml_collections.ConfigDict(dict(
          path="auto",         # auto | host | device | resident: see data.pipeline.PATHS
          crop_area_min=0.08, crop_area_max=1.0,
          # linear_eval and finetune train on crops from this fraction of the area up to
          # crop_area_max (torchvision's RandomResizedCrop default)
          labelled_crop_area_min=0.08,
          aspect_min=3 / 4, aspect_max=4 / 3,
          flip=True,
          color_strength=1.0,  # the colour distortion's strength s, scaling `jitter`
          jitter=(0.8, 0.8, 0.8, 0.2),  # brightness, contrast, saturation, hue at s = 1
          color_prob=0.8,
          grayscale_prob=0.2,
          blur_prob=0.5,       # ImageNet only; 0 for CIFAR and small images
          solarize_prob=0.0,
          # A view minus its Gaussian blur (sigma = highpass_sigma x its side), around
          # mid-grey, with this probability, before the colour ops: it takes smooth
          # lighting out of the view, so that two views cannot be matched by a gradient
          # across the background rather than by what is drawn on it.
          highpass_prob=0.0,
          highpass_sigma=0.1,
          # A random linear colour ramp added to a view with this probability, after the
          # high-pass and before the colour ops: a light from another side in each view,
          # so that a gradient the two views share no longer tells them apart from the
          # batch's others. At strength 1 each channel moves by up to about +-0.7 at the
          # corners.
          lighting_prob=0.0,
          lighting_strength=1.0,
      )),
      # {group name: view group}, declared by the method: see jax_ssl/data/views.py.
      views=ml_collections.ConfigDict(),
  ))

  c.train = ml_collections.ConfigDict(dict(
      batch_size=4096,           # global, over all devices of all processes
      num_epochs=100,
      warmup_epochs=10,
      # > 0: the run's length in steps whatever the dataset's size (num_epochs is then
      # unused), and likewise its warm-up; the schedule ends at the last step.
      num_steps=0,
      warmup_steps=0,
      max_steps=0,               # > 0 stops early but keeps the full run's schedule
      log_every_steps=100,
      checkpoint_every_steps=5000,
      keep_checkpoints=3,
      skip_nonfinite_steps=False,  # True: a step with NaN/Inf loss or gradients changes nothing
      force_resume=False,        # resume even if the workdir's config.json differs
  ))

  c.optim = ml_collections.ConfigDict(dict(
      name="lars",               # lars | larc (SGD inside apex's LARC) | sgd | adamw
      base_lr=0.3,
      lr_scaling="linear",       # linear: base_lr * B / base_batch_size; sqrt: base_lr * sqrt(B)
      base_batch_size=256,
      warmup_start_fraction=0.0,  # the warm-up starts at this fraction of the peak
      final_lr_fraction=0.0,     # the cosine ends at this fraction of the peak
      weight_decay=1e-6,
      # cosine: from weight_decay at the first step to weight_decay_end at the last (DINO)
      weight_decay_schedule="constant",
      weight_decay_end=0.0,
      grad_clip_per_tensor=0.0,  # > 0: each parameter's gradient clipped to this norm (DINO)
      # Biases and BN parameters take no weight decay, and no LARS/LARC adaptation; False:
      # every parameter does, as some official recipes do.
      exclude_from_decay=True,
      exclude_from_trust_ratio=True,
      momentum=0.9,
      nesterov=False,
      trust_coefficient=0.001,
      adam_beta2=0.999,          # adamw's second-moment decay (MAE: 0.95)
      layer_decay=1.0,           # < 1: ViT block i's rate x decay^(depth - i) (MAE fine-tuning)
      # {group: treatment} for the method's parameter groups (optim.GROUP_FIELDS); the
      # other parameters are the default group, treated as above.
      groups=ml_collections.ConfigDict(),
  ))

  c.eval = ml_collections.ConfigDict(dict(
      every_epochs=0,            # 0: only at the end of training
      every_steps=0,             # > 0: evaluate every this many steps instead
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
      # also the fast linear probe on each ResNet stage's pooled output (linear_top1_layer1,
      # ...): a pretext task can leave its best features before the last stage
      probe_layers=False,
  ))
  if method:
    from jax_ssl import methods  # noqa: PLC0415  (methods import this module)
    methods.compose(c, methods.get(method))
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
  """The schema set for a labelled protocol on a pretrained encoder (the standard linear
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
  """Keeps a recipe's method but makes it run on a laptop CPU in seconds, offline: the
  built-in digits (a command-line --config.data.source still wins), a ResNet-10 at 1/8
  width, 32 pixels, batch 32, 2 epochs; the method shrinks its own section and views."""
  c.model.arch = "resnet10"
  c.model.width_multiplier = 0.125
  c.model.cifar_stem = True
  c.data.update(source="builtin:mnist", data_dir="", train_split="train", test_split="test",
                image_size=32, shuffle_buffer=512)
  c.data.augment.blur_prob = 0.0
  for view in c.data.views.values():
    if view.blur_prob is not None:
      view.blur_prob = 0.0
  c.train.batch_size = 32
  c.train.num_epochs = 2
  c.train.warmup_epochs = 1
  c.train.log_every_steps = 1
  c.eval.batch_size = 64
  c.eval.linear_epochs = 5
  c.eval.max_train_examples = 0
  if c.method:
    from jax_ssl import methods  # noqa: PLC0415  (methods import this module)
    shrink = methods.get(c.method).tiny
    if shrink is not None:
      shrink(c)


def shrink_vit_for_cpu(c):
  """shrink_for_cpu for a ViT recipe, keeping a ViT: ViT-Tiny with 4-pixel patches at 32
  pixels (64 patches), its other ViT fields (position table, frozen projection) kept."""
  shrink_for_cpu(c)
  c.model.update(arch="vit_tiny", patch_size=4, image_size=32)


TINY_STEPS = 1500


def use_tiny_digits(c):
  """The offline CPU setting every `*_tiny.py` config shares, on the built-in digits or on
  any folder of small images.

  ResNet-10 at 1/8 width with the CIFAR stem at 28 pixels, batch 64 (on a CPU, small
  batches of a narrow net keep activations in cache), TINY_STEPS steps with a 50-step
  warm-up whatever the dataset's size (a folder of 1,000 images gets the same training as
  the 4,000 digits), evaluated against the random-init encoder. The augmentation held up
  on colour images as well as on the grayscale digits (README, "Your own images"): the full
  colour jitter and grayscale for half the views, since in users' images colour tells
  images apart without their content; crops from 20% of the area; no flip (mirrored digits
  are other glyphs); no blur. The labelled protocols crop from 80% of the area, as a probe
  on digits wants whole digits. kNN uses k=20: k=200 would be half of each class's 400
  training digits.
  """
  c.model.arch = "resnet10"
  c.model.width_multiplier = 0.125
  c.model.cifar_stem = True
  c.data.source = "builtin:mnist"
  c.data.image_size = 28
  c.data.shuffle_buffer = 4000
  c.data.augment.crop_area_min = 0.2
  c.data.augment.labelled_crop_area_min = 0.8
  c.data.augment.flip = False
  c.data.augment.color_strength = 1.0
  c.data.augment.grayscale_prob = 0.5
  c.data.augment.blur_prob = 0.0
  for view in c.data.views.values():
    view.blur_prob = 0.0
  c.train.batch_size = 64
  c.train.num_steps = TINY_STEPS
  c.train.warmup_steps = 50
  c.train.log_every_steps = 50
  c.train.checkpoint_every_steps = 250
  c.eval.baseline = True
  c.eval.batch_size = 512
  c.eval.knn_k = 20
  c.eval.linear_epochs = 100


# config.data.augment's fields in `use_lighting_robust_views`.
LIGHTING_ROBUST_VIEWS = {"crop_area_min": 0.5, "highpass_prob": 0.5, "lighting_prob": 0.8}


def lighting_robust_flags():
  """The command-line flags that give a run the views of `use_lighting_robust_views`."""
  return " ".join(f"--config.data.augment.{k}={v}" for k, v in LIGHTING_ROBUST_VIEWS.items())


def use_lighting_robust_views(c):
  """Views that cannot be matched by their lighting, for the tiny recipes that compare two
  views of an image (README, "Your own images").

  Over a lighting gradient two crops of one image share the gradient's direction and
  colours, and a small encoder learns to match them by it rather than by what is drawn:
  on folders of digits over colour gradients `simclr_tiny`'s contrastive loss fell while
  its features told the digits apart little better than a random encoder's. Here each view
  gets a light of its own (a random colour ramp on 80% of them) and half lose their
  smooth lighting to the high-pass, so the gradient stops telling views apart; crops
  from half the area, not a fifth, so that both views hold the drawing more often.
  `simclr_tiny`, `vicreg_tiny`, `cmc_tiny` (whose L and ab views share the lighting too)
  and `barlow_twins_tiny` take them; with them Barlow Twins, MoCo v2, BYOL, SimSiam, NPID,
  PIRL and the DeepClusters still did not beat their random-init encoders on the
  glyph_gradients folder, nor SwAV, DINO and MoCo v3 on builtin:colour_digits (README).
  """
  c.data.augment.update(LIGHTING_ROBUST_VIEWS)


def schema_of(config):
  """The schema a config is checked against: base_config of its method, if it has one."""
  return base_config(config.method if config.get("method") else None)


def unknown_fields(config, schema=None, prefix="config"):
  """Dotted names of fields in `config` that the schema does not have. View groups are
  checked against the fields of a group, whatever their names."""
  schema = schema_of(config) if schema is None else schema
  unknown = []
  for key, value in config.items():
    name = f"{prefix}.{key}"
    if name == "config.data.views":
      template = views_lib.group()
      for group_name, group in value.items():
        unknown += unknown_fields(group, template, f"{name}.{group_name}")
    elif key not in schema:
      unknown.append(name)
    elif isinstance(value, ml_collections.ConfigDict):
      unknown += unknown_fields(value, schema[key], name)
  return unknown


def require(ok, field, value, expected):
  if not ok:
    raise ValueError(f"{field}={value!r} is invalid: expected {expected}")


def _validate_method(config, num_devices):
  """The method is registered, the config holds its sections and no other method's, and
  the method's own checks pass."""
  from jax_ssl import methods  # noqa: PLC0415  (methods import this module)
  known = methods.names()
  require(config.method in known, "config.method", config.method, f"one of {known}")
  others = [name for name in known if name in config and name != config.method]
  if others or config.method not in config:
    raise ValueError(
        f"config.method={config.method!r} does not match the config's method section "
        f"{others or '(none)'}: start from a config file of {config.method} "
        f"(configs/{config.method}_*.py) or jax_ssl.config.base_config({config.method!r})")
  method = methods.get(config.method)
  require(any(v.count for v in config.data.views.values()), "config.data.views",
          config.data.views.to_dict(), f"at least one view group with count >= 1 "
          f"({config.method}'s views: {sorted(method.views().keys())})")
  for field, allowed in method.choices.items():
    value = config[config.method][field]
    require(value in allowed, f"config.{config.method}.{field}", value, f"one of {allowed}")
  declared = sorted(method.param_groups)
  require(sorted(config.optim.groups.keys()) == declared, "config.optim.groups",
          sorted(config.optim.groups.keys()), f"{config.method}'s parameter groups {declared}")
  for name, treatment in config.optim.groups.items():
    require(treatment.frozen_epochs >= 0, f"config.optim.groups.{name}.frozen_epochs",
            treatment.frozen_epochs, ">= 0")
    require(treatment.lr_multiplier >= 0, f"config.optim.groups.{name}.lr_multiplier",
            treatment.lr_multiplier, ">= 0")
  _check_frozen_patch_embed(config)
  if method.check is not None:
    method.check(config, num_devices)


def _check_frozen_patch_embed(config):
  """A gradient of zero does not stop decoupled weight decay from shrinking a frozen patch
  projection; MoCo v3 keeps it out of the optimizer (requires_grad=False). Any method may run
  a ViT, so the check is here: the method must declare a patch_embed group and keep it out
  of decay."""
  o = config.optim
  decays = o.weight_decay > 0 or (o.weight_decay_schedule != "constant" and o.weight_decay_end > 0)
  if not (config.model.frozen_patch_embed and decays):
    return
  require("patch_embed" in o.groups, "config.model.frozen_patch_embed", True,
          f"False for {config.method}, which declares no patch_embed parameter group to keep "
          "the projection out of weight decay (or config.optim.weight_decay=0)")
  require(not o.groups.patch_embed.weight_decay, "config.optim.groups.patch_embed.weight_decay",
          True, "False while config.model.frozen_patch_embed=True")


def validate(config, *, num_devices, num_processes=1):
  """Checks the config before anything is built; raises ValueError naming the field."""
  require(config.task in TASKS, "config.task", config.task, f"one of {TASKS}")
  if config.task == "pretrain":
    _validate_method(config, num_devices)
  unknown = unknown_fields(config)
  if unknown:
    named = ", ".join(cli.with_suggestion(name, schema_of(config)) for name in unknown)
    raise ValueError(f"unknown config field(s): {named}; see jax_ssl/config.py and the "
                     "method's module for the fields a config can set")
  if config.task != "pretrain":
    require(bool(config.pretrained), "config.pretrained", config.pretrained,
             "the workdir of a pretraining run")
  require(0 < config.data.label_fraction <= 1, "config.data.label_fraction",
           config.data.label_fraction, "in (0, 1]")
  require(config.data.on_bad_file in ON_BAD_FILE, "config.data.on_bad_file",
           config.data.on_bad_file, f"one of {ON_BAD_FILE}")
  t = config.train
  require(t.batch_size > 0, "config.train.batch_size", t.batch_size, "a positive integer")
  require(t.batch_size % num_devices == 0, "config.train.batch_size", t.batch_size,
           f"a multiple of the device count {num_devices}")
  require(t.batch_size % num_processes == 0, "config.train.batch_size", t.batch_size,
           f"a multiple of the process count {num_processes}")
  require(t.num_epochs > 0, "config.train.num_epochs", t.num_epochs, "> 0")
  require(0 <= t.warmup_epochs <= t.num_epochs, "config.train.warmup_epochs", t.warmup_epochs,
           f"between 0 and num_epochs={t.num_epochs}")
  for name in ("num_steps", "warmup_steps"):
    require(t[name] >= 0, f"config.train.{name}", t[name], ">= 0 (0: use the epochs field)")
  require(t.warmup_steps <= t.num_steps or not t.num_steps, "config.train.warmup_steps",
           t.warmup_steps, f"at most num_steps={t.num_steps}")
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
  _validate_eval(config.eval, num_devices, config.task)


def _validate_optim(o):
  require(o.name in optim.OPTIMIZERS, "config.optim.name", o.name, f"one of {optim.OPTIMIZERS}")
  require(o.lr_scaling in optim.LR_SCALINGS, "config.optim.lr_scaling", o.lr_scaling,
           f"one of {optim.LR_SCALINGS}")
  require(o.base_lr > 0, "config.optim.base_lr", o.base_lr, "> 0")
  for name in ("warmup_start_fraction", "final_lr_fraction"):
    require(0 <= o[name] <= 1, f"config.optim.{name}", o[name], "in [0, 1]")
  require(o.weight_decay >= 0, "config.optim.weight_decay", o.weight_decay, ">= 0")
  require(0 < o.layer_decay <= 1, "config.optim.layer_decay", o.layer_decay, "in (0, 1]")
  require(0 < o.adam_beta2 < 1, "config.optim.adam_beta2", o.adam_beta2, "in (0, 1)")
  require(o.weight_decay_schedule in optim.WEIGHT_DECAY_SCHEDULES,
          "config.optim.weight_decay_schedule", o.weight_decay_schedule,
          f"one of {optim.WEIGHT_DECAY_SCHEDULES}")
  if o.weight_decay_schedule != "constant":
    require(o.name in optim.SCHEDULED_DECAY_OPTIMIZERS, "config.optim.weight_decay_schedule",
            o.weight_decay_schedule, f"'constant' with config.optim.name={o.name!r} (a "
            f"schedule works with {optim.SCHEDULED_DECAY_OPTIMIZERS})")
    require(o.weight_decay_end >= 0, "config.optim.weight_decay_end", o.weight_decay_end, ">= 0")
  require(o.grad_clip_per_tensor >= 0, "config.optim.grad_clip_per_tensor",
          o.grad_clip_per_tensor, ">= 0 (0: no clipping)")


def _validate_eval(e, num_devices, task):
  require(e.every_epochs >= 0, "config.eval.every_epochs", e.every_epochs, ">= 0")
  require(e.every_steps >= 0, "config.eval.every_steps", e.every_steps, ">= 0")
  require(e.batch_size > 0 and e.batch_size % num_devices == 0, "config.eval.batch_size",
           e.batch_size, f"a positive multiple of the device count {num_devices}")
  require(e.knn_k > 0, "config.eval.knn_k", e.knn_k, "> 0")
  require(e.knn_temperature > 0, "config.eval.knn_temperature", e.knn_temperature, "> 0")
  require(e.linear_epochs > 0, "config.eval.linear_epochs", e.linear_epochs, "> 0")
  require(e.linear_mode in LINEAR_MODES, "config.eval.linear_mode", e.linear_mode,
           f"one of {LINEAR_MODES}")
  require(e.diagnostic_examples >= 2, "config.eval.diagnostic_examples", e.diagnostic_examples,
           ">= 2")
  for name in ("online_probe", "probe_layers"):
    require(isinstance(e[name], bool), f"config.eval.{name}", e[name], "True or False")
  require(not (e.probe_layers and task == "finetune"), "config.eval.probe_layers",
          e.probe_layers, "False with config.task='finetune' (it probes frozen features)")
  require(e.online_probe_lr > 0, "config.eval.online_probe_lr", e.online_probe_lr, "> 0")
