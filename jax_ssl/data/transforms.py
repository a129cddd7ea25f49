"""View transforms that make targets, applied on the devices after a view's augmentation.

A view group's `transform` (see data/views.py) names one of `TRANSFORMS`, with an optional
argument after a colon. A transform maps one float view [S, S, 3] in [0, 1] and a key to
{'image': the new view, target: value, ...}; 'image' replaces the view in the batch and
each target is stored beside it as `batch[f'{group}_{target}']`. They run in the jitted
step on every augmentation path (host, device, resident), one example at a time, with keys
drawn from (seed, step, the example's position in the global batch).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jax_ssl import parallel

_TRANSFORM_STREAM = 3  # apart from data/device.py's shuffle (1) and augmentation (2) streams


def rotate(image, key):
  """One of the four rotations by multiples of 90 degrees and its index (RotNet's label)."""
  k = jax.random.randint(key, [], 0, 4)
  rotated = jax.lax.switch(k, [lambda x, i=i: jnp.rot90(x, i) for i in range(4)], image)
  return {"image": rotated, "rotation": k}


def rotations(image, key):
  """All four rotations of the view, [4, S, S, 3], with labels 0..3 (Gidaris et al. 2018)."""
  del key
  return {"image": jnp.stack([jnp.rot90(image, i) for i in range(4)]),
          "rotation": jnp.arange(4, dtype=jnp.int32)}


def tiles(image, key, grid=3):
  """The view cut into grid x grid tiles, [grid^2, t, t, 3] in a random order, and the order:
  `permutation[i]` is the grid position (row-major) of tile i."""
  side = image.shape[0] // grid
  cut = image[:side * grid, :side * grid]
  pieces = cut.reshape(grid, side, grid, side, 3).transpose(0, 2, 1, 3, 4)
  pieces = pieces.reshape(grid * grid, side, side, 3)
  permutation = jax.random.permutation(key, grid * grid).astype(jnp.int32)
  return {"image": pieces[permutation], "permutation": permutation}


# Jigsaw (Noroozi & Favaro 2016): each tile is a random square of its grid cell, the paper's
# 64 pixels of 75, which leaves a random gap between neighbouring tiles; each tile's colour
# channels are cut up to 2 pixels per 64 of tile apart at random (none below 16-pixel
# tiles) and a tile is grey with this probability, so chromatic aberration and colour
# continuity do not give the arrangement away.
JIGSAW_TILE_FRACTION = 64 / 75
CHANNEL_JITTER_FRACTION = 2 / 64
JIGSAW_GRAYSCALE_PROB = 0.3


def _all_permutations(n):
  """Every permutation of range(n), [n!, n] int8, in lexicographic order."""
  if n == 1:
    return np.zeros((1, 1), np.int8)
  rest = _all_permutations(n - 1)
  blocks = []
  for first in range(n):
    others = np.delete(np.arange(n, dtype=np.int8), first)
    blocks.append(np.concatenate([np.full((len(rest), 1), first, np.int8), others[rest]], 1))
  return np.concatenate(blocks)


@functools.lru_cache(maxsize=None)
def permutation_set(count, parts=9, seed=0):
  """`count` permutations of `parts` tiles far apart in Hamming distance, [count, parts].

  Greedy, as the Jigsaw paper: the first is drawn from `seed`, then each next one is the
  permutation (of all parts! of them) whose distance to the nearest chosen one is largest,
  ties to the first in lexicographic order. Deterministic: every process makes the same set.
  """
  every = _all_permutations(parts)
  if not 1 <= count <= len(every):
    raise ValueError(f"a permutation set of {parts} tiles holds 1 to {len(every)}; got {count}")
  by_position = np.ascontiguousarray(every.T)  # [parts, n!]: one fast pass per position
  chosen = [int(np.random.default_rng(seed).integers(len(every)))]
  nearest = np.full(len(every), parts, np.int8)
  for _ in range(count - 1):
    distance = np.zeros(len(every), np.int8)
    for position, value in enumerate(every[chosen[-1]]):
      distance += by_position[position] != value
    nearest = np.minimum(nearest, distance)
    chosen.append(int(np.argmax(nearest)))
  return every[chosen].astype(np.int32)


def _cell_tiles(image, key, grid, tile, jitter=None):
  """A tile x tile square of each cell of a grid x grid grid, [grid^2, t, t, C], anywhere in
  the cell or, with `jitter`, up to that many pixels off the cell's centre; each colour
  channel shifted by up to CHANNEL_JITTER_FRACTION of the tile further, within the cell."""
  cell = image.shape[0] // grid
  room = cell - tile
  corner_key, channel_key = jax.random.split(key)
  low, high = (0, room) if jitter is None else (room // 2 - jitter, room // 2 + jitter)
  corners = jnp.clip(jax.random.randint(corner_key, [grid * grid, 1, 2], low, high + 1), 0, room)
  apart = round(tile * CHANNEL_JITTER_FRACTION)
  shifts = jax.random.randint(channel_key, [grid * grid, image.shape[-1], 2], -apart, apart + 1)
  starts = jnp.clip(corners + shifts, 0, room)  # [cells, channels, 2] within each cell
  origins = jnp.stack(jnp.divmod(jnp.arange(grid * grid), grid), axis=-1) * cell

  def cut(origin, start, channel):
    top, left = origin + start
    return jax.lax.dynamic_slice(image[..., channel], (top, left), (tile, tile))

  channels = jnp.arange(image.shape[-1])
  per_channel = jax.vmap(lambda o, s: jax.vmap(lambda st, c: cut(o, st, c))(s, channels))
  return jnp.moveaxis(per_channel(origins, starts), 1, -1)


def _greyed(pieces, key):
  """Each of the pieces [n, t, t, 3] grey with probability JIGSAW_GRAYSCALE_PROB."""
  grey = jax.random.bernoulli(key, JIGSAW_GRAYSCALE_PROB, [pieces.shape[0], 1, 1, 1])
  luma = pieces @ jnp.array([0.299, 0.587, 0.114], pieces.dtype)
  return jnp.where(grey, luma[..., None], pieces)


def jigsaw(image, key, permutations=100, grid=3):
  """Jigsaw's puzzle: grid x grid tiles [grid^2, t, t, 3] with gaps and jitter between them,
  placed in the order of one of `permutation_set(permutations)`, and its index there.

  `permutation[i]` is the grid position (row-major) of tile i, as `tiles` gives it;
  'permutation_index' is the class to predict.
  """
  order = jnp.asarray(permutation_set(permutations, grid * grid))
  tile_key, class_key, grey_key = jax.random.split(key, 3)
  cell = image.shape[0] // grid
  tile = max(1, min(cell - 1, round(cell * JIGSAW_TILE_FRACTION)))
  pieces = _cell_tiles(image, tile_key, grid, tile)
  index = jax.random.randint(class_key, [], 0, permutations)
  pieces = pieces[order[index]]
  return {"image": _greyed(pieces, grey_key), "permutation": order[index],
          "permutation_index": index}


# Relative position (Doersch, Gupta & Efros 2015): patches of 96 pixels with gaps of 48
# and up to 7 pixels of jitter: each patch is 2/3 of its 144-pixel cell, off its centre by
# up to 7/144 of the cell (at least a pixel).
NEIGHBOUR_TILE_FRACTION = 2 / 3
NEIGHBOUR_JITTER_FRACTION = 7 / 144
NEIGHBOURS = (0, 1, 2, 3, 5, 6, 7, 8)  # the grid positions around the centre, row-major


def _lit_alike(pieces):
  """Each of the pieces [n, t, t, C] moved to their common mean colour, channel by channel
  (as Noroozi & Favaro normalise each jigsaw tile): over a lighting gradient a piece's
  brightness and tint say where in the image it was cut, with none of what is drawn.
  Within a piece a linear gradient is one slope, the same in every piece, so with the
  offsets gone it no longer tells the pieces apart."""
  own = pieces.mean(axis=(1, 2), keepdims=True)
  return jnp.clip(pieces - own + own.mean(axis=0, keepdims=True), 0.0, 1.0)


def relative_position(image, key):
  """The centre patch of a 3 x 3 grid and one of its 8 neighbours, [2, t, t, 3], with a gap
  and jitter between them, moved to their common mean colour, and the neighbour's index
  in NEIGHBOURS (0 top-left ... 7 bottom-right).

  On builtin:colour_digits the move lifted relative_position_tiny from +5.1 to +11.7
  points over its random-init encoder; Jigsaw's nine tiles, moved alike, fell from +5.2 to
  +1.4, so they keep their colours."""
  tile_key, class_key, grey_key = jax.random.split(key, 3)
  cell = image.shape[0] // 3
  tile = max(1, min(cell - 1, round(cell * NEIGHBOUR_TILE_FRACTION)))
  jitter = max(1, round(cell * NEIGHBOUR_JITTER_FRACTION))
  pieces = _cell_tiles(image, tile_key, 3, tile, jitter)
  index = jax.random.randint(class_key, [], 0, len(NEIGHBOURS))
  pair = pieces[jnp.stack([4, jnp.asarray(NEIGHBOURS)[index]])]
  pair = _greyed(_lit_alike(pair), grey_key)
  return {"image": pair, "neighbour": index}


def _linear_rgb(rgb, xp=jnp):
  return xp.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


# sRGB (D65) to CIE XYZ, and the D65 white point.
# numpy, not jnp: a module-level jnp array would start JAX's backend on import.
_RGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423],
                        [0.212671, 0.715160, 0.072169],
                        [0.019334, 0.119193, 0.950227]], np.float32)
_WHITE = np.array([0.950456, 1.0, 1.088754], np.float32)


def rgb_to_lab(rgb, xp=jnp):
  """sRGB in [0, 1] -> CIE L*a*b* (L in [0, 100], a and b about [-110, 110]). `xp=np`
  computes it in NumPy, for constants made on the host."""
  xyz = _linear_rgb(rgb, xp) @ _RGB_TO_XYZ.T / _WHITE
  cube_root = xp.where(xyz > (6 / 29) ** 3, xp.cbrt(xp.maximum(xyz, 1e-12)),
                       xyz / (3 * (6 / 29) ** 2) + 4 / 29)
  x, y, z = cube_root[..., 0], cube_root[..., 1], cube_root[..., 2]
  return xp.stack([116 * y - 16, 500 * (x - y), 200 * (y - z)], axis=-1)


def lab_to_rgb(lab_values):
  """CIE L*a*b* -> sRGB, the inverse of `rgb_to_lab`; colours outside the sRGB gamut come
  back outside [0, 1] (the colorization bins use that to find the gamut)."""
  y = (lab_values[..., 0] + 16) / 116
  cube_root = jnp.stack([y + lab_values[..., 1] / 500, y, y - lab_values[..., 2] / 200], -1)
  xyz = jnp.where(cube_root > 6 / 29, cube_root ** 3, 3 * (6 / 29) ** 2 * (cube_root - 4 / 29))
  linear = (xyz * _WHITE) @ np.linalg.inv(_RGB_TO_XYZ).T.astype(np.float32)
  magnitude = jnp.maximum(jnp.abs(linear), 1e-12)
  encoded = jnp.sign(linear) * (1.055 * magnitude ** (1 / 2.4) - 0.055)
  return jnp.where(jnp.abs(linear) <= 0.0031308, 12.92 * linear, encoded)


def lab_channels(rgb):
  """(L [..., 1] in [0, 1], ab [..., 2] scaled to about [-1, 1]) of sRGB in [0, 1]."""
  converted = rgb_to_lab(rgb)
  return converted[..., :1] / 100.0, converted[..., 1:] / 110.0


def lab(image, key):
  """The view's L channel as the image, [S, S, 1] in [0, 1], and its ab channels as 'ab',
  [S, S, 2] scaled to about [-1, 1] (CMC's two views of one image, Tian et al. 2020)."""
  del key
  lightness, ab = lab_channels(image)
  return {"image": lightness, "ab": ab}


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


# The colour a grey view's white becomes in `tinted_lab`: a saturated orange, far from
# grey in both a and b.
TINT = np.array([1.0, 0.55, 0.1], np.float32)


def tinted_lab(image, key):
  """`lab` of the view's grey levels painted from black to TINT, for grey images: their
  ab channels are 0 everywhere, so CMC's ab view would hold nothing; tinted, ab shows the
  strokes as L does. One fixed colour: a random one per view would make the colour a
  nuisance that each view's encoder must learn to ignore."""
  grey = (image @ _LUMA)[..., None]
  return lab(grey * TINT, key)


# YDbDr (SECAM) from gamma-encoded RGB: Y is the luma, Db and Dr span [-1.333, 1.333].
_RGB_TO_YDBDR = np.array([[0.299, 0.587, 0.114],
                          [-0.450, -0.883, 1.333],
                          [-1.333, 1.116, 0.217]], np.float32)
_DBDR_RANGE = 1.333


def ydbdr(image, key):
  """The view's luma Y as the image, [S, S, 1] in [0, 1], and its chroma Db and Dr as
  'dbdr', [S, S, 2] scaled to [-1, 1]: the colour space of CMC's best two-view split (Tian
  et al. 2020, which colour space?)."""
  del key
  converted = image @ _RGB_TO_YDBDR.T
  return {"image": converted[..., :1], "dbdr": converted[..., 1:] / _DBDR_RANGE}


# sRGB (D65) from CIE XYZ: the inverse of _RGB_TO_XYZ.
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ.astype(np.float64)).astype(np.float32)


def ab_as_rgb(ab, lightness=60.0):
  """The colours of CMC's ab view [..., 2] at one lightness, sRGB in [0, 1], to draw it."""
  ab = np.asarray(ab, np.float32) * 110.0
  y = (lightness + 16) / 116
  cube_root = np.stack([y + ab[..., 0] / 500, np.full(ab.shape[:-1], y), y - ab[..., 1] / 200],
                       axis=-1)
  xyz = np.where(cube_root > 6 / 29, cube_root ** 3, 3 * (6 / 29) ** 2 * (cube_root - 4 / 29))
  linear = np.clip((xyz * _WHITE) @ _XYZ_TO_RGB.T, 0, 1)
  return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def patch_grid(image, grid):
  """CPC's patches: a grid x grid grid of overlapping square patches of views [..., S, S, C]
  -> [..., grid^2, p, p, C], row-major, each overlapping its neighbours by half (van den
  Oord et al. 2018: 7 x 7 patches of 64 pixels at stride 32 of a 256-pixel image). The
  stride is S // (grid + 1) and the patch twice it, so the patches cover the view; the
  S mod (grid + 1) pixels left over are split between the two sides."""
  size = image.shape[-3]
  stride = size // (grid + 1)
  side = 2 * stride
  starts = [(size - (grid + 1) * stride) // 2 + stride * i for i in range(grid)]
  return jnp.stack([image[..., top:top + side, left:left + side, :]
                    for top in starts for left in starts], axis=-4)


def patches(image, key, grid=7):
  """The view cut into CPC's overlapping patch grid, [grid^2, p, p, 3] (`patch_grid`)."""
  del key
  return {"image": patch_grid(image, grid)}


def _masked(image, top, left, side):
  """The view with a side x side square at (top, left) filled with grey, the mask (1
  inside) and the original view as 'target'."""
  size = image.shape[0]
  rows = (jnp.arange(size) >= top) & (jnp.arange(size) < top + side)
  cols = (jnp.arange(size) >= left) & (jnp.arange(size) < left + side)
  inside = (rows[:, None] & cols[None, :])[..., None]
  return {"image": jnp.where(inside, 0.5, image), "mask": inside.astype(jnp.float32),
          "target": image}


def _mask_side(size, area):
  return min(size, max(1, round(size * area ** 0.5)))


def mask(image, key, area=0.25):
  """A random square covering `area` of the view filled with grey, the mask (1 inside)
  and the original view as 'target' (inpainting, Pathak et al. 2016)."""
  size = image.shape[0]
  side = _mask_side(size, area)
  top, left = jax.random.randint(key, [2], 0, size - side + 1)
  return _masked(image, top, left, side)


def center_mask(image, key, area=0.25):
  """As `mask`, with the square at the centre of the view (the context encoder's central
  region: the middle 64 x 64 pixels of 128 are area 0.25)."""
  del key
  size = image.shape[0]
  side = _mask_side(size, area)
  corner = (size - side) // 2
  return _masked(image, corner, corner, side)


# Targets that are images of their own, and how to draw them as sRGB (data/show.py).
DRAWN_TARGETS = {"ab": ab_as_rgb}

# name -> (function, type of its argument or None, default argument)
TRANSFORMS = {
    "rotate": (rotate, None, None),
    "rotations": (rotations, None, None),
    "tiles": (tiles, int, 3),
    "jigsaw": (jigsaw, int, 100),
    "relative_position": (relative_position, None, None),
    "lab": (lab, None, None),
    "tinted_lab": (tinted_lab, None, None),
    "ydbdr": (ydbdr, None, None),
    "patches": (patches, int, 7),
    "mask": (mask, float, 0.25),
    "center_mask": (center_mask, float, 0.25),
}


def describe():
  return [name + (f":<{kind.__name__}>" if kind else "")
          for name, (_, kind, _) in TRANSFORMS.items()]


def parse(spec):
  """'tiles:3' -> (tiles, {'grid': 3}); raises ValueError for an unknown transform."""
  name, _, arg = spec.partition(":")
  if name not in TRANSFORMS:
    raise ValueError(f"view transform {spec!r} is unknown; expected one of {describe()}")
  fn, kind, default = TRANSFORMS[name]
  if kind is None:
    if arg:
      raise ValueError(f"view transform {name!r} takes no argument; got {spec!r}")
    return fn
  value = kind(arg) if arg else default
  return lambda image, key: fn(image, key, value)


def is_known(spec):
  if not spec:
    return True
  try:
    parse(spec)
  except ValueError:
    return False
  return True


def _per_view(fn, views, keys, stacked):
  """fn over every view of a group: [B, ...] with keys [B], or [B, n, ...] with [B, n]."""
  if stacked:
    return jax.vmap(jax.vmap(fn))(views, keys)
  return jax.vmap(fn)(views, keys)


def apply(groups, batch, seed, step):
  """The batch with each group's transform applied (outside any shard_map: per-example
  work that XLA partitions over the batch's sharding)."""
  transformed = [g for g in groups if g.transform]
  if not transformed:
    return batch
  size = batch[transformed[0].name].shape[0]
  base = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), _TRANSFORM_STREAM), step)
  example_keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(size))
  out = dict(batch)
  for index, group in enumerate(groups):
    if not group.transform:
      continue
    keys = jax.vmap(lambda k, i=index: jax.random.fold_in(k, i))(example_keys)
    if group.stacked:
      keys = jax.vmap(lambda k, n=group.count: jax.random.split(k, n))(keys)
    results = _per_view(parse(group.transform), out[group.name].astype(jnp.float32), keys,
                        group.stacked)
    out[group.name] = results.pop("image")
    out.update({f"{group.name}_{name}": value for name, value in results.items()})
  return out


def sharded_apply(groups, mesh, seed):
  """(batch, step) -> `apply` with the batch's outputs constrained to the data sharding."""
  def run(batch, step):
    out = apply(groups, batch, seed, step)
    return jax.lax.with_sharding_constraint(out, parallel.batch_sharding(mesh))
  return run
