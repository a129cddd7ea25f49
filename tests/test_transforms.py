"""View transforms that make targets: each one's target is right, and every augmentation
path (host, device, resident) applies them, the same on 1 device and on 8."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_ssl import config as config_lib, parallel, step as step_lib
from jax_ssl.data import device, make_source, pipeline, transforms


def image(size=12, seed=0):
  return jax.random.uniform(jax.random.key(seed), (size, size, 3))


def keys(count):
  return jax.random.split(jax.random.key(1), count)


def test_rotate_gives_the_rotation_that_undoes_it_and_draws_all_four():
  x = image()
  out = jax.vmap(lambda k: transforms.rotate(x, k))(keys(200))
  assert out["image"].shape == (200, 12, 12, 3) and out["rotation"].dtype == jnp.int32
  for rotated, k in zip(out["image"][:12], out["rotation"][:12]):
    np.testing.assert_array_equal(np.rot90(np.asarray(rotated), -int(k)), x)
  counts = np.bincount(np.asarray(out["rotation"]), minlength=4)
  assert counts.min() > 30  # about 50 each


def test_rotations_are_all_four_with_their_labels():
  out = transforms.rotations(image(), None)
  np.testing.assert_array_equal(out["rotation"], [0, 1, 2, 3])
  for k in range(4):
    np.testing.assert_array_equal(out["image"][k], np.rot90(np.asarray(image()), k))


def test_tiles_and_their_permutation_rebuild_the_view():
  x = image(13)  # the last row and column fall outside a 3 x 3 grid of 4-pixel tiles
  out = transforms.parse("tiles:3")(x, jax.random.key(2))
  assert out["image"].shape == (9, 4, 4, 3)
  assert sorted(np.asarray(out["permutation"]).tolist()) == list(range(9))
  rebuilt = np.zeros((12, 12, 3), np.float32)
  for tile, position in zip(np.asarray(out["image"]), np.asarray(out["permutation"])):
    row, column = divmod(int(position), 3)
    rebuilt[4 * row:4 * row + 4, 4 * column:4 * column + 4] = tile
  np.testing.assert_array_equal(rebuilt, np.asarray(x)[:12, :12])


def cell_image(size, grid=3):
  """A grey image whose every grid cell is a checkerboard around mid-grey with an amplitude
  that names the cell's row-major position, (position + 1) / 40: it survives the move of
  each piece to a common mean colour, as a constant cell would not."""
  cell = size // grid
  amplitudes = (np.arange(grid * grid, dtype=np.float32).reshape(grid, grid) + 1) / 40
  checks = np.indices((size, size)).sum(0) % 2 * 2 - 1
  values = 0.5 + np.kron(amplitudes, np.ones((cell, cell), np.float32)) * checks
  return jnp.asarray(np.repeat(values[..., None], 3, axis=-1))


def position_of(piece):
  """The grid position of the cell_image cell a piece [t, t, 3] was cut from."""
  return int(np.rint(np.asarray(piece).std() * 40)) - 1


def test_the_permutation_set_is_fixed_distinct_and_far_apart():
  perms = transforms.permutation_set(100)
  assert perms.shape == (100, 9) and perms is transforms.permutation_set(100)  # made once
  assert all(sorted(p) == list(range(9)) for p in perms)
  distances = (perms[:, None] != perms[None]).sum(-1) + 9 * np.eye(100, dtype=int)
  assert distances.min() >= 6  # a uniform draw of 100 has pairs 2 apart
  np.testing.assert_array_equal(transforms.permutation_set(10), perms[:10])  # greedy: a prefix
  with pytest.raises(ValueError, match="holds 1 to 362880"):
    transforms.permutation_set(0)


def test_the_jigsaw_label_names_the_permutation_that_puts_the_tiles_back():
  out = jax.jit(jax.vmap(transforms.parse("jigsaw:10")))(jnp.stack([cell_image(30)] * 64),
                                                         keys(64))
  assert out["image"].shape == (64, 9, 9, 9, 3)  # 9-pixel tiles of 10-pixel cells: gaps
  perms = transforms.permutation_set(10)
  np.testing.assert_array_equal(out["permutation"], perms[np.asarray(out["permutation_index"])])
  assert len(set(np.asarray(out["permutation_index"]).tolist())) == 10
  for pieces, permutation in zip(np.asarray(out["image"]), np.asarray(out["permutation"])):
    back = np.empty_like(pieces)
    back[permutation] = pieces  # tile i came from grid position permutation[i]
    assert [position_of(tile) for tile in back] == list(range(9))


def _window_of(cell, tile):
  """Whether every channel of `tile` [t, t, 3] is a window of that channel of `cell`."""
  t = tile.shape[0]
  return all(any(np.array_equal(cell[r:r + t, c:c + t, ch], tile[..., ch])
                 for r in range(cell.shape[0] - t + 1) for c in range(cell.shape[1] - t + 1))
             for ch in range(3))


def test_jigsaw_tiles_are_jittered_squares_of_their_cells_some_grey():
  x = np.asarray(image(24))
  out = jax.jit(jax.vmap(lambda k: transforms.jigsaw(jnp.asarray(x), k)))(keys(8))
  assert out["image"].shape == (8, 9, 7, 7, 3)  # 7-pixel tiles of 8-pixel cells
  grey = 0
  for pieces, permutation in zip(np.asarray(out["image"]), np.asarray(out["permutation"])):
    for tile, position in zip(pieces, permutation):
      row, column = divmod(int(position), 3)
      cell = x[8 * row:8 * row + 8, 8 * column:8 * column + 8]
      if np.array_equal(tile[..., 0], tile[..., 1]):  # grey: the cell's luma somewhere
        grey += 1
        continue
      assert _window_of(cell, tile)
  assert 5 < grey < 45  # 30% of 72 tiles


def test_the_neighbour_label_names_the_patch_offset_from_the_centre():
  out = jax.jit(jax.vmap(transforms.relative_position))(jnp.stack([cell_image(27)] * 128),
                                                        keys(128))
  assert out["image"].shape == (128, 2, 6, 6, 3)  # 6-pixel patches of 9-pixel cells
  labels = np.asarray(out["neighbour"])
  assert np.bincount(labels, minlength=8).min() > 5  # about 16 each
  for (centre, patch), label in zip(np.asarray(out["image"]), labels):
    assert position_of(centre) == 4
    row, column = divmod(transforms.NEIGHBOURS[label], 3)
    assert (row - 1, column - 1) == [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1),
                                     (1, 0), (1, 1)][label]
    assert position_of(patch) == 3 * row + column


def test_a_lighting_gradient_alone_does_not_tell_where_a_neighbour_was_cut():
  # A blank image lit by a colour ramp: each piece's own brightness and tint would say
  # where it came from. Moved to one mean colour, every piece is the same slope, wherever
  # in its cell and in whichever cell it was cut.
  y, x = np.mgrid[0:30, 0:30] / 29
  ramp = 0.2 + 0.6 * (0.7 * x + 0.3 * y)[..., None] * np.array([1.0, 0.5, 0.8])
  out = jax.vmap(transforms.relative_position, (None, 0))(jnp.asarray(ramp, jnp.float32),
                                                          keys(8))
  compared = 0
  for pieces in np.asarray(out["image"]):
    colour = pieces[~np.all(pieces[..., :1] == pieces, axis=(1, 2, 3))]  # grey ones aside
    np.testing.assert_allclose(colour, np.broadcast_to(colour[0], colour.shape), atol=1e-5)
    compared += len(colour) - 1
  assert compared >= 4


def test_lab_splits_lightness_from_colour():
  colours = jnp.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
  lab = transforms.rgb_to_lab(colours)
  # CIE L*a*b* (D65) of white, black, sRGB red and mid-grey.
  np.testing.assert_allclose(lab, [[100, 0, 0], [0, 0, 0], [53.24, 80.09, 67.20],
                                   [53.39, 0, 0]], atol=0.05)
  out = transforms.lab(image(), None)
  assert out["image"].shape == (12, 12, 1) and out["ab"].shape == (12, 12, 2)
  assert 0 <= out["image"].min() and out["image"].max() <= 1 and np.abs(out["ab"]).max() <= 1


def test_ydbdr_splits_luma_from_chroma_as_secam_defines_them():
  rgb = np.random.default_rng(3).uniform(size=(5, 4, 3))
  out = transforms.ydbdr(jnp.asarray(rgb, jnp.float32), None)
  r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
  luma = 0.299 * r + 0.587 * g + 0.114 * b  # SECAM's Y, Db and Dr of gamma-encoded RGB
  db = -0.450 * r - 0.883 * g + 1.333 * b
  dr = -1.333 * r + 1.116 * g + 0.217 * b
  np.testing.assert_allclose(out["image"][..., 0], luma, atol=1e-6)
  np.testing.assert_allclose(out["dbdr"], np.stack([db, dr], -1) / 1.333, atol=1e-6)
  grey = transforms.ydbdr(jnp.full((2, 2, 3), 0.4), None)
  np.testing.assert_allclose(grey["dbdr"], 0, atol=1e-6)  # grey has no chroma


def test_tinted_lab_gives_grey_images_colour_and_ab_draws_back_as_its_hue():
  grey = jnp.broadcast_to(jnp.linspace(0, 1, 12)[:, None, None], (12, 12, 3))
  plain = transforms.lab(grey, None)
  assert np.abs(plain["ab"]).max() < 1e-3  # a grey view's ab view holds nothing
  out = transforms.parse("tinted_lab")(grey, jax.random.key(0))
  assert out["image"].shape == (12, 12, 1) and np.abs(out["ab"][-1]).max() > 0.05
  np.testing.assert_allclose(out["ab"][0], 0, atol=1e-3)  # black stays black
  # Drawn at lightness 53.24, the ab of sRGB red is red again.
  red = transforms.rgb_to_lab(jnp.array([1.0, 0.0, 0.0]))[1:] / 110
  np.testing.assert_allclose(transforms.ab_as_rgb(red, 53.24), [1, 0, 0], atol=0.01)


@pytest.mark.parametrize("size, grid, stride", [(32, 3, 8), (240, 7, 30), (30, 3, 7)])
def test_the_patch_grid_overlaps_by_half_and_covers_the_view(size, grid, stride):
  rows, columns = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
  where = np.stack([rows, columns, np.zeros_like(rows)], axis=-1).astype(np.float32)
  patches = np.asarray(transforms.parse(f"patches:{grid}")(jnp.asarray(where), None)["image"])
  assert patches.shape == (grid * grid, 2 * stride, 2 * stride, 3)
  margin = (size - (grid + 1) * stride) // 2  # 30 pixels: 1 left over on the top and left
  covered = np.zeros((size, size), int)
  for position, patch in enumerate(patches):
    top, left = patch[0, 0, :2]
    assert (top, left) == (margin + stride * (position // grid),
                           margin + stride * (position % grid))  # row-major
    np.testing.assert_array_equal(patch, where[int(top):int(top) + 2 * stride,
                                               int(left):int(left) + 2 * stride])
    covered[int(top):int(top) + 2 * stride, int(left):int(left) + 2 * stride] += 1
  inside = slice(margin, margin + (grid + 1) * stride)
  assert (covered[inside, inside] >= 1).all() and covered.sum() == covered[inside, inside].sum()
  # Neighbours share half a patch: pixels of the inner bands are in two patches per axis.
  assert covered[margin + stride, margin] == 2 and covered[margin + stride, margin + stride] == 4
  # Batched views give each view's grid.
  batch = transforms.patch_grid(jnp.stack([jnp.asarray(where)] * 2), grid)
  np.testing.assert_array_equal(batch[1], patches)


def test_mask_greys_out_a_square_of_the_given_area_and_keeps_the_view_as_target():
  x = image(20)
  out = transforms.parse("mask:0.25")(x, jax.random.key(3))
  inside = np.asarray(out["mask"][..., 0]) == 1
  assert inside.sum() == 100  # a 10 x 10 square
  np.testing.assert_array_equal(np.asarray(out["image"])[inside], 0.5)
  np.testing.assert_array_equal(np.asarray(out["image"])[~inside], np.asarray(x)[~inside])
  np.testing.assert_array_equal(out["target"], x)


def test_lab_round_trip_recovers_every_8_bit_level_to_a_fraction_of_a_level():
  levels = np.arange(256, dtype=np.float32) / 255  # each channel through every level
  colours = np.stack(np.meshgrid(levels, levels[::17], levels[::15], indexing="ij"),
                     -1).reshape(-1, 3)
  back = np.asarray(transforms.lab_to_rgb(transforms.rgb_to_lab(colours)))
  assert np.abs(back - colours).max() < 0.1 / 255


def test_center_mask_greys_out_the_central_square():
  x = image(20)
  out = transforms.parse("center_mask:0.25")(x, None)
  expected = np.zeros((20, 20), bool)
  expected[5:15, 5:15] = True  # a 10 x 10 square, 5 pixels from every side
  np.testing.assert_array_equal(np.asarray(out["mask"][..., 0]) == 1, expected)
  np.testing.assert_array_equal(np.asarray(out["image"])[expected], 0.5)
  np.testing.assert_array_equal(np.asarray(out["image"])[~expected], np.asarray(x)[~expected])
  np.testing.assert_array_equal(out["target"], x)


def test_unknown_transforms_and_arguments_are_refused_by_name():
  with pytest.raises(ValueError, match="view transform 'spin' is unknown"):
    transforms.parse("spin")
  with pytest.raises(ValueError, match="takes no argument"):
    transforms.parse("rotate:2")
  assert transforms.is_known("tiles:2") and not transforms.is_known("tiles:x")


def rotation_config(path_size=12):
  """SimCLR's two views, the second rotated: a target beside the views."""
  config = config_lib.base_config("simclr")
  config_lib.shrink_for_cpu(config)
  config.data.image_size = path_size
  config.data.views.view2.transform = "rotate"
  config.data.views.view1.transform = "tiles:2"
  return config


def test_the_methods_batch_spec_holds_the_targets():
  spec = step_lib.example_batch(rotation_config(), batch_size=4)
  assert spec["view2"].shape == (4, 12, 12, 3) and spec["view2_rotation"].shape == (4,)
  assert spec["view1"].shape == (4, 4, 6, 6, 3) and spec["view1_permutation"].shape == (4, 4)
  assert spec["index"].shape == (4,)


@pytest.mark.parametrize("path", ["host", "device", "resident"])
def test_every_path_applies_the_transforms_the_same_on_1_and_8_devices(path):
  config = rotation_config()
  source = make_source(config.data)
  outputs = []
  for devices in (jax.devices()[:1], jax.devices()):
    mesh = parallel.make_mesh(devices)
    prepare = jax.jit(device.make_prepare(config.data, mesh, seed=0, path=path,
                                          global_batch_size=16))
    if path == "resident":
      batch = device.resident_dataset(source, mesh, global_batch_size=16)
    else:
      host = next(pipeline.pretrain_batches(config.data, source, local_batch_size=16, seed=0,
                                            colour_on_host=path == "host"))
      batch = parallel.global_batch(host, mesh)
    outputs.append(jax.device_get(prepare(batch, 3)))
  one, eight = outputs
  assert eight["view2"].shape == (16, 12, 12, 3) and eight["view1"].shape == (16, 4, 6, 6, 3)
  assert set(np.unique(eight["view2_rotation"])) <= {0, 1, 2, 3}
  assert all(sorted(p) == [0, 1, 2, 3] for p in eight["view1_permutation"])
  if path == "resident":  # each device draws from its own shard: other examples on 1 device
    return
  for key in ("view2_rotation", "view1_permutation", "index", "label"):
    np.testing.assert_array_equal(one[key], eight[key])
  for key in ("view1", "view2"):
    np.testing.assert_allclose(one[key], eight[key], atol=0.02)
