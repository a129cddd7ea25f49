"""CMC's view encoders (two or more) and CPC's patch grid: evaluation encoders, the causal
context, export. tests/test_methods.py runs CMC of three views 3 steps on mock data."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file

from jax_ssl import config as config_lib, export, models, step as step_lib
from jax_ssl.data import transforms
from jax_ssl.methods import cmc, cpc


def tiny(method, size=16):
  c = config_lib.base_config(method)
  config_lib.shrink_for_cpu(c)
  c.data.image_size = size
  return c


def images(size=16, count=3, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(size=(count, size, size, 3)),
                     jnp.float32)


def cmc_tiny(views=("L", "ab"), transform="lab"):
  c = tiny("cmc")
  c.cmc.views = views
  c.data.views.image.transform = transform
  return c


def cmc_variables(c):
  """A tiny CMC's model and its variables."""
  model = cmc.create_model(c)
  return model, model.init(jax.random.key(0), cmc.split_views(c, cmc.converted(c, images())),
                           train=False)


@pytest.fixture(scope="module")
def cmc_run():
  """A tiny CMC of L and ab: its config, its model's variables and its evaluation encoder."""
  c = cmc_tiny()
  return (c, *cmc_variables(c), cmc.encoder(c))


@pytest.fixture(scope="module")
def three_views():
  """A tiny CMC of L, a and b, with its variables."""
  c = cmc_tiny(("L", "a", "b"))
  return (c, *cmc_variables(c))


def test_cmc_encoders_are_half_width_and_the_evaluation_encoder_concatenates_them(cmc_run):
  c, model, variables, encoder = cmc_run
  half = models.feature_dim(models.ARCHS["resnet10"], 0.125 * 0.5)
  conv1 = {k: variables["params"][k]["conv1"]["kernel"].shape for k in cmc.backbone_names(c)}
  assert conv1["l_backbone"][2] == 1 and conv1["ab_backbone"][2] == 2  # input channels
  assert conv1["l_backbone"][3] == models.scaled_width(models.BASE_WIDTH, 0.0625)
  assert step_lib.encoder_feature_dim(encoder, c) == 2 * half
  # On RGB images it gives the model's own features of their L and ab channels.
  x = images()
  features, (v_l, v_ab) = model.apply(variables, transforms.lab_channels(x), train=False)
  got = encoder.module.apply(encoder.variables(variables["params"], variables["batch_stats"]),
                             x, train=False)
  np.testing.assert_allclose(got, features, atol=1e-5)
  assert v_l.shape == v_ab.shape == (3, c.cmc.dim)


def test_cmc_evaluation_encoder_tints_grey_images_as_training_does():
  c = cmc_tiny(transform="tinted_lab")
  model, variables = cmc_variables(c)
  encoder = cmc.encoder(c)
  grey = jnp.repeat(images()[..., :1], 3, axis=-1)
  tinted = transforms.tinted_lab(grey, None)
  features, _ = model.apply(variables, (tinted["image"], tinted["ab"]), train=False)
  got = encoder.module.apply(encoder.variables(variables["params"], variables["batch_stats"]),
                             grey, train=False)
  np.testing.assert_allclose(got, features, atol=1e-5)
  assert np.abs(tinted["ab"]).max() > 0.1  # the ab encoder sees the strokes, not zeros


@pytest.mark.parametrize("views, transform, channels", [
    (("L", "ab"), "lab", ((0,), (1, 2))),
    (("L", "a", "b"), "tinted_lab", ((0,), (1,), (2,))),
    (("Y", "Db", "Dr"), "ydbdr", ((0,), (1,), (2,))),
    (("DbDr", "Y"), "ydbdr", ((1, 2), (0,))),
])
def test_cmc_views_are_channel_groups_of_the_colour_space(views, transform, channels):
  c = cmc_tiny(views, transform)
  cmc.check(c, 8)
  assert cmc.view_channels(c) == channels
  colour = cmc.converted(c, images())
  for view, group in zip(cmc.split_views(c, colour), channels):
    np.testing.assert_array_equal(view, colour[..., list(group)])


def test_cmc_three_views_have_three_encoders_and_export_writes_each(three_views, tmp_path):
  c, model, variables = three_views
  names = ("l_backbone", "a_backbone", "b_backbone")
  assert cmc.backbone_names(c) == names
  _, features = model.apply(variables, cmc.split_views(c, cmc.converted(c, images())),
                            train=False)
  assert len(features) == 3
  encoder = cmc.encoder(c)
  kept = encoder.variables(variables["params"], variables["batch_stats"])
  export.export_encoder(kept, c, str(tmp_path), step=2, encoder=encoder)
  module, restored, info = export.load_encoder(str(tmp_path))
  assert info["feature_dim"] == 3 * 32
  x = images(seed=2)
  np.testing.assert_allclose(module.apply(restored, x, train=False),
                             encoder.module.apply(kept, x, train=False), atol=1e-6)
  files = info["torch_state_dicts"]
  assert sorted(files) == sorted(names)
  for name in names:  # [O, I, kh, kw]: one channel each
    assert load_file(tmp_path / "export" / files[name])["conv1.weight"].shape[1] == 1


def test_cmc_export_writes_each_encoder_and_reloads(cmc_run, tmp_path):
  c, _, variables, encoder = cmc_run
  kept = encoder.variables(variables["params"], variables["batch_stats"])
  export.export_encoder(kept, c, str(tmp_path), step=4, encoder=encoder)
  module, restored, info = export.load_encoder(str(tmp_path))
  assert info["method"] == "cmc" and info["feature_dim"] == 2 * 32
  x = images(seed=1)
  np.testing.assert_allclose(module.apply(restored, x, train=False),
                             encoder.module.apply(kept, x, train=False), atol=1e-6)
  files = info["torch_state_dicts"]
  assert sorted(files) == sorted(cmc.backbone_names(c))
  lightness = load_file(tmp_path / "export" / files["l_backbone"])
  assert lightness["conv1.weight"].shape[1] == 1  # [O, I, kh, kw]: the L channel alone
  assert load_file(tmp_path / "export" / files["ab_backbone"])["conv1.weight"].shape[1] == 2


def test_cpc_context_at_a_row_sees_only_the_rows_above_and_its_own():
  net = cpc.ContextNetwork(dim=8, layers=2, kernel=3)
  z = jax.random.normal(jax.random.key(0), (2, 5, 5, 4))
  params = net.init(jax.random.key(1), z)
  before = net.apply(params, z)
  for row in range(5):
    after = net.apply(params, z.at[:, row].add(1.0))
    np.testing.assert_array_equal(after[:, :row], before[:, :row])
    assert np.abs(after[:, row] - before[:, row]).min() > 0


def test_cpc_evaluation_encoder_averages_the_patch_features():
  c = tiny("cpc")  # 3 x 3 patches of 8 pixels of 16-pixel images
  model = cpc.create_model(c)
  x = images()
  patches = transforms.patch_grid(x, c.cpc.grid)
  variables = model.init(jax.random.key(0), patches, train=False)
  features, z, predictions = model.apply(variables, patches, train=False)
  assert z.shape[:3] == (3, 3, 3) and predictions.shape == (3, c.cpc.steps) + z.shape[1:]
  encoder = cpc.encoder(c)
  got = encoder.module.apply(encoder.variables(variables["params"], variables["batch_stats"]),
                             x, train=False)
  np.testing.assert_allclose(got, features, atol=1e-5)
  np.testing.assert_allclose(got, jnp.mean(z, axis=(1, 2)), atol=1e-5)
  assert step_lib.encoder_feature_dim(encoder, c) == models.backbone_feature_dim(c.model)


@pytest.mark.parametrize("method, field, value, message", [
    ("cmc", "cmc.objective", "star", "config.cmc.objective='star'"),
    ("cmc", "data.views.image.transform", "", "config.data.views.image.transform=''"),
    ("cmc", "cmc.views", ("L",), r"config.cmc.views=\('L',\)"),
    ("cmc", "cmc.views", ("L", "Db"), r"config.cmc.views=\('L', 'Db'\)"),
    ("cmc", "cmc.views", ("L", "ab", "a"), r"config.cmc.views=\('L', 'ab', 'a'\)"),
    ("cpc", "cpc.steps", 3, "config.cpc.steps=3"),
    ("cpc", "data.views.patches.transform", "patches:4",
     "config.data.views.patches.transform='patches:4'"),
])
def test_bad_fields_are_named(method, field, value, message):
  c = tiny(method)
  section, name = field.rsplit(".", 1)
  target = c
  for part in section.split("."):
    target = target[part]
  target[name] = value
  with pytest.raises(ValueError, match=message):
    {"cmc": cmc, "cpc": cpc}[method].check(c, 8)
