"""MAE: the per-example masks, the loss on hidden patches against its formula and across
devices, an encoder that sees only the visible patches, reconstructions in pixels, the
config's errors and MAE's linear-probe protocol."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P
from test_train import REPO, load_config

from jax_ssl import config as config_lib, losses, parallel, reconstruct, supervised
from jax_ssl.methods import mae

BATCH, PATCHES, PIXELS = 16, 16, 12  # 16 px images in 4 px patches, one channel's worth x 3


@pytest.fixture(scope="module")
def tiny_config():
  c = config_lib.base_config("mae")
  config_lib.shrink_vit_for_cpu(c)
  c.model.update(depth=2, image_size=16, pos_embed="sincos", weight_init="xavier")
  c.data.image_size = 16
  c.mae.update(decoder_width=32, decoder_depth=1, decoder_heads=4)
  return c


@pytest.fixture(scope="module")
def problem():
  keys = jax.random.split(jax.random.key(0), 3)
  predicted = jax.random.normal(keys[0], (BATCH, PATCHES, PIXELS))
  patches = jax.random.uniform(keys[1], (BATCH, PATCHES, PIXELS))
  _, mask = mae.random_masking(keys[2], BATCH, PATCHES, 0.75)
  return predicted, patches, mask


def test_each_example_keeps_a_quarter_of_its_patches_and_its_own():
  keep, mask = mae.random_masking(jax.random.key(1), 8, 64, 0.75)
  assert keep.shape == (8, 16)
  np.testing.assert_array_equal(np.asarray(mask).sum(1), 48)
  for row, hidden in zip(np.asarray(keep), np.asarray(mask)):
    assert len(set(row)) == 16 and np.all(hidden[row] == 0)  # kept = exactly the visible
  assert len({tuple(sorted(row)) for row in np.asarray(keep)}) == 8
  assert mae.num_kept(196, 0.75) == 49  # ViT-B/16 at 224: 49 of 196 patches


def test_masks_are_the_same_on_one_and_eight_devices():
  mesh = parallel.make_mesh()
  assert mesh.size == 8
  rng = jax.random.key(2)

  def masking(key):
    return mae.random_masking(key, 16, 64, 0.75)

  single = jax.jit(masking)(rng)
  sharded_out = NamedSharding(mesh, P(parallel.DATA_AXIS))
  sharded = jax.jit(masking, out_shardings=(sharded_out, sharded_out))(rng)
  for a, b in zip(single, sharded):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def numpy_mae_loss(predicted, patches, mask):
  """The paper's loss in float64: targets standardised per patch (biased variance, eps
  1e-6 inside the root), squared error per patch, averaged over the hidden patches."""
  predicted, patches, mask = (np.asarray(x, np.float64) for x in (predicted, patches, mask))
  mean = patches.mean(-1, keepdims=True)
  var = patches.var(-1, keepdims=True)
  target = (patches - mean) / np.sqrt(var + 1e-6)
  per_patch = ((predicted - target) ** 2).mean(-1)
  return (per_patch * mask).sum() / mask.sum()


def test_the_loss_is_the_papers_formula_on_hidden_patches_only(problem):
  predicted, patches, mask = problem
  np.testing.assert_allclose(losses.mae_loss(predicted, patches, mask),
                             numpy_mae_loss(predicted, patches, mask), rtol=1e-5)
  visible = 1 - mask[..., None]
  moved = predicted + 5.0 * visible  # wrong everywhere the encoder could see
  np.testing.assert_allclose(losses.mae_loss(moved, patches, mask),
                             losses.mae_loss(predicted, patches, mask), rtol=1e-6)
  gradient = jax.grad(losses.mae_loss)(predicted, patches, mask)
  assert np.all(np.asarray(gradient * visible) == 0)
  target = losses.normalized_patches(patches)[0]
  assert float(losses.mae_loss(target, patches, mask)) == 0.0


def test_the_loss_sharded_on_eight_devices_equals_unsharded(problem):
  mesh = parallel.make_mesh()
  spec = P(parallel.DATA_AXIS)
  sharded = jax.shard_map(lambda p, t, m: losses.mae_loss(p, t, m, axis_name=parallel.DATA_AXIS),
                          mesh=mesh, in_specs=(spec,) * 3, out_specs=P())
  # Uneven masks per device: the global mean, not a mean of the devices' means.
  predicted, patches, mask = problem
  mask = mask.at[:2].set(1.0)
  value, grad = jax.jit(jax.value_and_grad(sharded))(predicted, patches, mask)
  expected, expected_grad = jax.value_and_grad(losses.mae_loss)(predicted, patches, mask)
  np.testing.assert_allclose(value, expected, rtol=1e-6)
  np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-9)


def test_the_encoder_sees_the_class_token_and_the_visible_patches_only(tiny_config):
  model = mae.create_model(tiny_config)
  images = jax.random.uniform(jax.random.key(3), (2, 16, 16, 3))
  variables = model.init(jax.random.key(4), images, train=False)
  keep, _ = mae.random_masking(jax.random.key(5), 2, 16, 0.75)
  tokens = model.backbone.apply({"params": variables["params"]["backbone"]}, images,
                                train=False, keep=keep, pool=False)
  assert tokens.shape == (2, 1 + 4, 192)
  _, predicted = model.apply(variables, images, train=False, keep=keep)
  assert predicted.shape == (2, 16, 4 * 4 * 3)
  # A hidden patch's pixels change nothing the encoder computes.
  hidden = np.setdiff1d(np.arange(16), np.asarray(keep[0]))[0]
  row, col = divmod(int(hidden), 4)
  changed = images.at[0, row * 4:row * 4 + 4, col * 4:col * 4 + 4].set(0.9)
  again = model.backbone.apply({"params": variables["params"]["backbone"]}, changed,
                               train=False, keep=keep, pool=False)
  np.testing.assert_allclose(again, tokens, atol=1e-6)


def test_the_encoder_on_every_patch_is_the_evaluation_vit(tiny_config):
  model = mae.create_model(tiny_config)
  images = jax.random.uniform(jax.random.key(6), (2, 16, 16, 3))
  params = model.init(jax.random.key(7), images, train=False)["params"]
  features, _ = model.apply({"params": params}, images, train=False)
  whole = model.backbone.apply({"params": params["backbone"]}, images, train=False)
  np.testing.assert_allclose(features, whole, atol=1e-6)


def test_patchify_round_trips_in_maes_order():
  images = jnp.arange(2 * 8 * 8 * 3, dtype=jnp.float32).reshape(2, 8, 8, 3)
  patches = mae.patchify(images, 4)
  assert patches.shape == (2, 4, 48)
  # Patch 1 is the top row's second patch; its pixels row by row, each pixel's channels.
  np.testing.assert_array_equal(patches[0, 1, :6], images[0, 0, 4:6].reshape(-1))
  np.testing.assert_array_equal(mae.unpatchify(patches, 4), images)


def test_reconstructions_are_unnormalised_with_each_patchs_own_statistics():
  images = jax.random.uniform(jax.random.key(8), (2, 16, 16, 3))
  patches = mae.patchify(images, 4)
  perfect = losses.normalized_patches(patches)[0]
  _, mask = mae.random_masking(jax.random.key(9), 2, 16, 0.75)
  masked, recon, pasted = reconstruct.panels(images, perfect, mask, 4, norm_pix=True)
  np.testing.assert_allclose(recon, images, atol=1e-5)
  np.testing.assert_allclose(pasted, images, atol=1e-5)
  hidden = np.asarray(mae.unpatchify(jnp.broadcast_to(mask[..., None], patches.shape), 4))
  np.testing.assert_allclose(np.asarray(masked)[hidden == 1], reconstruct.GREY)
  np.testing.assert_array_equal(np.asarray(masked)[hidden == 0], np.asarray(images)[hidden == 0])
  # Zero predictions are each hidden patch's mean; the visible patches stay the image's.
  _, recon, pasted = reconstruct.panels(images, jnp.zeros_like(perfect), mask, 4, norm_pix=True)
  means = jnp.broadcast_to(patches.mean(-1, keepdims=True), patches.shape)
  np.testing.assert_allclose(recon, mae.unpatchify(means, 4), atol=1e-6)
  np.testing.assert_array_equal(np.asarray(pasted)[hidden == 0], np.asarray(images)[hidden == 0])


@pytest.mark.parametrize("field, value, message", [
    ("mae.mask_ratio", 1.0, "config.mae.mask_ratio=1.0"),
    ("mae.mask_ratio", 0.99, "config.mae.mask_ratio=0.99"),  # keeps none of 64
    ("mae.decoder_heads", 3, "config.mae.decoder_width=64"),
    ("mae.decoder_depth", 0, "config.mae.decoder_depth=0"),
    ("model.arch", "resnet18", "config.model.arch='resnet18'"),
])
def test_bad_values_name_their_field(field, value, message):
  c = config_lib.base_config("mae")
  config_lib.shrink_vit_for_cpu(c)
  config_lib.validate(c, num_devices=1)
  section, name = field.split(".")
  c[section][name] = value
  with pytest.raises(ValueError, match=message.replace(".", r"\.")) as error:
    config_lib.validate(c, num_devices=1)
  assert "\n" not in str(error.value)


def test_maes_linear_probe_protocol_trains_a_normalised_head_with_lars(pretrained_workdir,
                                                                       tmp_path):
  config = load_config([f"--config={REPO / 'configs/linear_eval.py'}:mae",
                        f"--config.pretrained={pretrained_workdir}",
                        "--config.train.batch_size=16", "--config.train.num_epochs=2",
                        "--config.train.warmup_epochs=1", "--config.eval.batch_size=32"])
  assert (config.optim.name, config.optim.weight_decay, config.train.batch_size) == \
      ("lars", 0.0, 16)
  assert load_config([f"--config={REPO / 'configs/linear_eval.py'}:mae"]).train.batch_size \
      == 16384
  results = supervised.run(config, str(tmp_path / "linear"))
  assert 0 <= results["linear_top1"] <= results["linear_top5"] <= 1


def test_layer_decay_scales_each_vit_layers_updates(tiny_config):
  from jax_ssl import optim  # noqa: PLC0415

  params = {"backbone": mae.create_model(tiny_config).backbone.init(
      jax.random.key(10), jnp.zeros((1, 16, 16, 3)), train=False)["params"],
            "head": {"kernel": jnp.ones((192, 10))}}
  scales = optim.layer_scales(params, 0.5)  # depth 2: embeddings 0, blocks 1-2, the rest 3
  assert scales["backbone"]["cls_token"] == scales["backbone"]["patch_embed"]["proj"][
      "kernel"] == 0.125
  assert scales["backbone"]["blocks_0"]["attn"]["qkv"]["kernel"] == 0.25
  assert scales["backbone"]["blocks_1"]["mlp"]["fc2"]["bias"] == 0.5
  assert scales["backbone"]["norm"]["scale"] == scales["head"]["kernel"] == 1.0
  grads = jax.tree.map(lambda p: jnp.full_like(p, 0.1), params)

  def first_update(layer_decay):
    c = config_lib.base_config().optim
    c.update(name="adamw", weight_decay=0.05, layer_decay=layer_decay)
    tx = optim.make_optimizer(c, 1e-3)
    return tx.update(grads, tx.init(params), params)[0]

  jax.tree.map(lambda d, p, s: np.testing.assert_allclose(d, p * s, rtol=1e-6),
               first_update(0.5), first_update(1.0), scales)
  finetune = load_config([f"--config={REPO / 'configs/finetune.py'}:mae"])
  assert (finetune.optim.name, finetune.optim.layer_decay) == ("adamw", 0.65)
