"""Exports a pretrained encoder alone, for evaluation here and for use outside JAX.

  python -m jax_ssl.export --workdir=<pretraining workdir>

writes <workdir>/export/ (also written at the end of every pretraining run):
  encoder/             orbax checkpoint of {'params', 'batch_stats'} of the method's
                       evaluation encoder only, by default the backbone (no projection
                       head, no optimizer or method state);
  encoder.json         the architecture (config.model; for an encoder other than the
                       backbone, its method and that method's config), feature size,
                       input convention;
  encoder.safetensors  for backbone ResNets, a PyTorch state dict with torchvision's names and
                       layouts (conv1.weight [O, I, kh, kw], bn1.running_mean,
                       layer1.0.conv1.weight, layer2.0.downsample.0.weight, ...); for
                       ViTs, one with timm's (cls_token, pos_embed, patch_embed.proj.weight,
                       blocks.0.attn.qkv.weight [3D, D], blocks.0.mlp.fc1.weight, norm.bias,
                       ...), a fixed sin-cos table written as pos_embed;
  encoder.<part>.safetensors  for a method's own encoder, the same for each ResNet in it
                       (its parameters' top-level entries named '*backbone': CMC's
                       one per view, by default l_backbone with 1 input channel and
                       ab_backbone with 2; CPC's patch encoder), listed in
                       encoder.json's 'torch_state_dicts'.

Loading the state dict into torchvision's resnet (ResNet-18/34/50/...; strict=False, since
there is no `fc`) gives the same features; a `cifar_stem` encoder needs
`conv1 = Conv2d(3, width, 3, 1, 1, bias=False)` and `maxpool = Identity()`. A ViT's loads
strictly into timm's VisionTransformer(**kwargs) (or timm.create_model(name, **kwargs),
name such as vit_small_patch16_224) with encoder.json's 'timm' entry, num_classes=0: its
output is the class token feature. Inputs are RGB floats in [0, 1] without mean/std
normalisation, as in training.
"""
import json
import os
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import tensorflow as tf
from absl import app, flags

from jax_ssl import checkpoint, cli, methods, models, parallel, step as step_lib
from jax_ssl.models import vit as vit_lib

EXPORT_DIR = "export"
INFO_FILE = "encoder.json"
TORCH_FILE = "encoder.safetensors"
INPUT_CONVENTION = "RGB float32 in [0, 1], no mean/std normalisation; NHWC in JAX, NCHW in torch"


def _absolute(path):
  return path if "://" in path else os.path.abspath(path)


def export_dir(workdir):
  return os.path.join(_absolute(workdir), EXPORT_DIR)


def export_encoder(variables, config, workdir, step, encoder=None):
  """Writes workdir/export/; every process calls it (the orbax save is collective).

  `encoder` (a methods.Encoder) defaults to the backbone. Another encoder (two encoders
  concatenated, a pooled patch grid) is written with its method's config so that
  `load_encoder` can rebuild it; only a backbone also gets a PyTorch state dict.
  """
  is_backbone = encoder is None or encoder.is_backbone
  out = export_dir(workdir)
  checkpointer = checkpoint.checkpointer()
  checkpointer.save(os.path.join(out, "encoder"), variables, force=True)
  checkpointer.wait_until_finished()
  if jax.process_index() != 0:
    return out
  info = {
      "model": config.model.to_dict(),
      "encoder": "backbone" if is_backbone else "method",
      "feature_dim": (models.backbone_feature_dim(config.model) if is_backbone
                      else step_lib.encoder_feature_dim(encoder, config)),
      "image_size": config.data.image_size,
      "pretrained_on": config.data.source,
      "method": config.method,
      "step": int(step),
      "input": INPUT_CONVENTION,
      "torch_state_dict": TORCH_FILE if is_backbone else None,
  }
  parts = {None: variables} if is_backbone else backbone_parts(variables)
  if not is_backbone:
    info["method_config"] = config[config.method].to_dict()
    info["torch_state_dicts"] = {name: part_file(name) for name in parts}
  is_vit = is_backbone and models.is_vit(config.model)
  if is_vit:
    info["timm"] = timm_model(config.model)
  with tf.io.gfile.GFile(os.path.join(out, INFO_FILE), "w") as f:
    f.write(json.dumps(info, indent=2))
  from safetensors.numpy import save  # noqa: PLC0415  (only the exporting process needs it)
  for name, part in parts.items():
    state = (timm_state_dict(part["params"], config.model) if is_vit
             else torch_state_dict(part, step))
    with tf.io.gfile.GFile(os.path.join(out, part_file(name)), "wb") as f:
      f.write(save(state))
  return out


def part_file(name):
  """The state dict's file of the ResNet `name` of a method's encoder (None: the backbone)."""
  return TORCH_FILE if name is None else TORCH_FILE.replace(".", f".{name}.", 1)


def backbone_parts(variables):
  """{name: variables} of the ResNets in a method's encoder: the top-level entries of its
  parameters whose names end in 'backbone'."""
  stats = variables.get("batch_stats", {})
  return {name: {"params": params, "batch_stats": stats.get(name, {})}
          for name, params in variables["params"].items() if name.endswith("backbone")}


def encoder_module(info):
  """The flax module of an export, from its encoder.json."""
  if info.get("encoder", "backbone") == "backbone":
    return models.create_backbone(ml_collections.ConfigDict(info["model"]))
  from jax_ssl import config as config_lib  # noqa: PLC0415  (imports every method)
  config = config_lib.base_config(info["method"])
  config.model.update(info["model"])
  config[info["method"]].update(info["method_config"])
  config.data.image_size = info["image_size"]
  return methods.get(info["method"]).encoder(config).module


# ------------------------------------------------------------------ torch ----
_TORCH_LEAF = {("params", "kernel"): "weight", ("params", "scale"): "weight",
               ("params", "bias"): "bias", ("batch_stats", "mean"): "running_mean",
               ("batch_stats", "var"): "running_var"}
_TORCH_MODULE = {"downsample_conv": "downsample.0", "downsample_bn": "downsample.1"}


def torch_name(collection, path):
  """('params', ('layer2_0', 'downsample_conv', 'kernel')) -> 'layer2.0.downsample.0.weight'."""
  *modules, leaf = path
  parts = [_TORCH_MODULE.get(m, m.replace("_", ".")) for m in modules]
  return ".".join(parts + [_TORCH_LEAF[(collection, leaf)]])


def torch_state_dict(variables, num_batches_tracked=0):
  """{torchvision name: numpy array}: conv kernels HWIO -> OIHW, BN scale -> weight."""
  state = {}
  for collection in ("params", "batch_stats"):
    flat = jax.tree_util.tree_flatten_with_path(jax.device_get(variables[collection]))[0]
    for keys, value in flat:
      path = tuple(k.key for k in keys)
      value = np.asarray(value, np.float32)
      if path[-1] == "kernel":
        value = value.transpose(3, 2, 0, 1)
      state[torch_name(collection, path)] = np.ascontiguousarray(value)
      if path[-1] == "mean":  # one per BN layer; torch uses it only when momentum=None
        bn = torch_name(collection, path).rsplit(".", 1)[0]
        state[f"{bn}.num_batches_tracked"] = np.asarray(num_batches_tracked, np.int64)
  return state


# ------------------------------------------------------------------- timm ----
_TIMM_LEAF = {"kernel": "weight", "scale": "weight", "bias": "bias"}


def timm_name(path):
  """('blocks_3', 'attn', 'qkv', 'kernel') -> 'blocks.3.attn.qkv.weight'; ('cls_token',) and
  ('pos_embed',) keep their names."""
  *modules, leaf = path
  modules = [re.sub(r"^blocks_(\d+)$", r"blocks.\1", m) for m in modules]
  return ".".join(modules + [_TIMM_LEAF.get(leaf, leaf)])


def timm_state_dict(params, model_config):
  """{timm name: numpy array} of a ViT: conv kernels HWIO -> OIHW, dense kernels
  [in, out] -> [out, in], LayerNorm scale -> weight; a fixed sin-cos table, which is no
  parameter here, as timm's pos_embed (MoCo v3 stores it so too)."""
  state = {}
  for keys, value in jax.tree_util.tree_flatten_with_path(jax.device_get(params))[0]:
    path = tuple(k.key for k in keys)
    value = np.asarray(value, np.float32)
    if path[-1] == "kernel":
      value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T
    state[timm_name(path)] = np.ascontiguousarray(value)
  if "pos_embed" not in state:
    grid = model_config.image_size // model_config.patch_size
    state["pos_embed"] = vit_lib.sincos_table(grid, state["cls_token"].shape[-1])[None]
  return state


def timm_model(model_config):
  """How timm builds the exported ViT, class token features out: `kwargs` for
  timm.models.vision_transformer.VisionTransformer, or for timm.create_model(`name`) where
  timm registers that name (vit_small_patch16_224, ...)."""
  m = model_config
  width, depth, heads = vit_lib.SIZES[models.VIT_ARCHS[m.arch]]
  depth = m.depth or depth
  return {"name": f"{m.arch}_patch{m.patch_size}_224",
          "kwargs": {"img_size": m.image_size, "patch_size": m.patch_size, "embed_dim": width,
                     "depth": depth, "num_heads": m.num_heads or heads, "num_classes": 0}}


# ------------------------------------------------------------------- load ----
def read_info(path):
  """encoder.json of an export, given the export folder or the pretraining workdir."""
  folder = find_export(path)
  with tf.io.gfile.GFile(os.path.join(folder, INFO_FILE)) as f:
    return json.load(f)


def find_export(path):
  """The export folder inside `path` (a workdir) or `path` itself; None if neither."""
  for folder in (os.path.join(_absolute(path), EXPORT_DIR), _absolute(path)):
    if tf.io.gfile.exists(os.path.join(folder, INFO_FILE)):
      return folder
  return None


def load_encoder(path, mesh=None):
  """(backbone module, variables replicated over `mesh`, encoder.json) of an export."""
  folder = find_export(path)
  if folder is None:
    raise FileNotFoundError(f"no exported encoder in {path}: expected {path}/{EXPORT_DIR}/"
                            f"{INFO_FILE} (run python -m jax_ssl.export --workdir={path})")
  info = read_info(folder)
  backbone = encoder_module(info)
  size = info["image_size"]
  shapes = jax.eval_shape(lambda: backbone.init(jax.random.key(0), jnp.zeros((1, size, size, 3)),
                                                train=False))
  shapes = {"params": shapes["params"], "batch_stats": shapes.get("batch_stats", {})}
  checkpointer = checkpoint.checkpointer()
  location = os.path.join(folder, "encoder")
  check_shapes(checkpointer.metadata(location).item_metadata.tree, shapes, location,
               info["model"])
  sharding = parallel.replicated(mesh or parallel.make_mesh())
  target = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
                        shapes)
  return backbone, checkpointer.restore(location, target), info


def check_shapes(stored, expected, location, model_config):
  """Raises ValueError naming the first array whose stored shape is not the model's."""
  stored = {jax.tree_util.keystr(k): tuple(v.shape)
            for k, v in jax.tree_util.tree_flatten_with_path(stored)[0]}
  for keys, value in jax.tree_util.tree_flatten_with_path(expected)[0]:
    name = jax.tree_util.keystr(keys)
    if stored.get(name) != tuple(value.shape):
      found = stored.get(name, "nothing")
      raise ValueError(f"the encoder in {location} does not match its architecture "
                       f"{model_config}: {name} has shape {found}, expected "
                       f"{tuple(value.shape)}")


# ------------------------------------------------------------ from a run ----
def read_run_config(workdir):
  """The config.json a pretraining run wrote, as a ConfigDict."""
  path = os.path.join(_absolute(workdir), "config.json")
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"{workdir} has no config.json: expected the workdir of a "
                            "pretraining run (python main.py --config=... --workdir=...)")
  with tf.io.gfile.GFile(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def export_from_workdir(workdir):
  """Exports the encoder of the latest checkpoint in a pretraining workdir."""
  config = read_run_config(workdir)
  step, state = restore_latest(workdir)
  encoder = methods.get(config.method).encoder(config)
  return export_encoder(encoder.variables(state["params"], state["batch_stats"]),
                        config, workdir, step, encoder)


def restore_latest(workdir):
  """(step, train state) of the latest checkpoint in a pretraining workdir."""
  directory = os.path.join(_absolute(workdir), "checkpoints")
  manager = ocp.CheckpointManager(directory, item_names=("state",))
  step = manager.latest_step()
  if step is None:
    found = tf.io.gfile.listdir(_absolute(workdir))
    raise FileNotFoundError(f"{workdir} has no checkpoint in {directory} (found {sorted(found)});"
                            " expected a pretraining run that saved at least one step")
  # Restored without a target: every entry lands on one device, which an encoder fits.
  restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  return step, restored["state"]


def main(argv):
  del argv
  f = flags.FLAGS
  tf.config.set_visible_devices([], "GPU")  # TF only writes files here
  parallel.start_processes(f.coordinator_address, f.num_processes, f.process_id)
  out = export_from_workdir(f.workdir)
  if jax.process_index() == 0:
    print(out)


if __name__ == "__main__":
  parallel.define_process_flags()
  flags.DEFINE_string("workdir", None, "The pretraining workdir whose latest checkpoint to export.")
  flags.mark_flag_as_required("workdir")
  app.run(main, flags_parser=cli.quiet_flags)
