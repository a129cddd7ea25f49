"""Augmentation on the accelerators, inside the jitted step.

The host's tf.data only decodes, crops and flips (the `device` path), or does
nothing at all (the `resident` path, where the uint8 dataset lives on the
devices, sharded, and the crops are taken there too). Everything here is
written for one example and one key and vmapped over the batch, so every
example draws its own random numbers; a random choice under vmap becomes a
select, which costs both branches on the device but never a host round trip.

The ops follow `augment.py`, the host versions, op for op: the same
distributions, the same order (crop, flip, high-pass, lighting, colour jitter in random
order with a clip after each op, grayscale, blur, solarize), the same tf.image
conventions (HSV saturation and hue, per-channel contrast means, bicubic
resizing).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow as tf
from jax.sharding import PartitionSpec as P

from jax_ssl import parallel
from jax_ssl.data import augment, pipeline, transforms


def _coin(key, prob):
  return jax.random.uniform(key) < prob


def random_apply(fn, image, key, prob):
  """`fn(image, fn_key)` with probability `prob`, else `image`."""
  coin_key, fn_key = jax.random.split(key)
  return jnp.where(_coin(coin_key, prob), fn(image, fn_key), image)


# ----------------------------------------------------------------- crop ----
def sample_crop_box(key, height, width, area_range=(0.08, 1.0), aspect_range=(3 / 4, 4 / 3)):
  """Inception-style (top, left, crop_height, crop_width), as `augment.sample_crop_box`.

  `height` and `width` are static; the box is float32 (whole pixels).
  """
  area_key, aspect_key, top_key, left_key = jax.random.split(key, 4)
  h, w = float(height), float(width)
  area = h * w * jax.random.uniform(area_key, [augment.CROP_ATTEMPTS], minval=area_range[0],
                                    maxval=area_range[1])
  aspect = jnp.exp(jax.random.uniform(aspect_key, [augment.CROP_ATTEMPTS],
                                      minval=math.log(aspect_range[0]),
                                      maxval=math.log(aspect_range[1])))
  crop_w = jnp.round(jnp.sqrt(area * aspect))
  crop_h = jnp.round(jnp.sqrt(area / aspect))
  fits = (crop_w >= 1) & (crop_w <= w) & (crop_h >= 1) & (crop_h <= h)
  first = jnp.argmax(fits)
  # The fallback: the largest centred box with a clamped aspect ratio.
  clamped = min(max(w / h, aspect_range[0]), aspect_range[1])
  fallback_h, fallback_w = (h, round(h * clamped)) if w / h > clamped else (round(w / clamped), w)
  any_fit = jnp.any(fits)
  crop_h = jnp.where(any_fit, crop_h[first], fallback_h)
  crop_w = jnp.where(any_fit, crop_w[first], fallback_w)
  top = jnp.floor(jax.random.uniform(top_key) * (h - crop_h + 1))
  left = jnp.floor(jax.random.uniform(left_key) * (w - crop_w + 1))
  top = jnp.where(any_fit, top, (h - crop_h) // 2)
  left = jnp.where(any_fit, left, (w - crop_w) // 2)
  return top, left, crop_h, crop_w


def crop_and_resize(image, box, size):
  """The box of `image` resized to [size, size] with tf's bicubic kernel, no antialiasing.

  One `scale_and_translate` maps output pixel centres into the box, so no
  dynamically shaped crop is ever materialised.
  """
  top, left, crop_h, crop_w = box
  scale = jnp.stack([size / crop_h, size / crop_w])
  translation = -jnp.stack([top, left]) * scale
  resized = jax.image.scale_and_translate(image, (size, size, image.shape[-1]), (0, 1), scale,
                                          translation, method="cubic", antialias=False)
  return jnp.clip(resized, 0.0, 1.0)


def random_resized_crop(image, key, size, area_range=(0.08, 1.0), aspect_range=(3 / 4, 4 / 3)):
  box = sample_crop_box(key, image.shape[0], image.shape[1], area_range, aspect_range)
  return crop_and_resize(image, box, size)


def random_flip(image, key):
  return jnp.where(_coin(key, 0.5), image[:, ::-1], image)


# ---------------------------------------------------------------- colour ----
def rgb_to_hsv(rgb):
  """tf.image.rgb_to_hsv: hue in [0, 1), saturation and value in [0, 1]."""
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  value = jnp.max(rgb, axis=-1)
  chroma = value - jnp.min(rgb, axis=-1)
  safe = jnp.where(chroma > 0, chroma, 1.0)
  saturation = jnp.where(value > 0, chroma / jnp.where(value > 0, value, 1.0), 0.0)
  hue = jnp.where(value == r, (g - b) / safe,
                  jnp.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
  hue = jnp.where(chroma > 0, hue / 6.0, 0.0) % 1.0
  return jnp.stack([hue, saturation, value], axis=-1)


def hsv_to_rgb(hsv):
  """tf.image.hsv_to_rgb, as a smooth piecewise-linear function of the hue."""
  hue, saturation, value = hsv[..., 0:1], hsv[..., 1:2], hsv[..., 2:3]
  sextant = hue * 6.0
  offsets = jnp.array([3.0, 2.0, 4.0])
  signs = jnp.array([1.0, -1.0, -1.0])
  shift = jnp.array([-1.0, 2.0, 2.0])
  weights = jnp.clip(signs * jnp.abs(sextant - offsets) + shift, 0.0, 1.0)
  return value * (1.0 - saturation + saturation * weights)


def adjust_brightness(image, factor):
  """SimCLR v2's multiplicative brightness."""
  return image * factor


def adjust_contrast(image, factor):
  """tf.image.adjust_contrast: each channel pulled towards or pushed from its mean."""
  mean = jnp.mean(image, axis=(0, 1), keepdims=True)
  return (image - mean) * factor + mean


def adjust_saturation(image, factor):
  """tf.image.adjust_saturation: HSV saturation scaled and clipped to [0, 1]."""
  hsv = rgb_to_hsv(image)
  hsv = hsv.at[..., 1].set(jnp.clip(hsv[..., 1] * factor, 0.0, 1.0))
  return hsv_to_rgb(hsv)


def adjust_hue(image, delta):
  """tf.image.adjust_hue: the hue rotated by `delta` turns."""
  hsv = rgb_to_hsv(image)
  hsv = hsv.at[..., 0].set((hsv[..., 0] + delta) % 1.0)
  return hsv_to_rgb(hsv)


def color_jitter(image, key, strength, jitter=augment.SIMCLR_JITTER):
  """The four jitter ops in a random order, each followed by a clip (see augment.color_jitter)."""
  amounts = [strength * j for j in jitter]
  if strength == 0:
    return image
  lower = jnp.array([max(1.0 - a, 0.0) for a in amounts[:3]])
  upper = jnp.array([1.0 + a for a in amounts[:3]])
  u = jax.random.uniform(key, [8])
  factors = lower + (upper - lower) * u[:3]
  hue_delta = amounts[3] * (2.0 * u[3] - 1.0)
  ops = [
      lambda x: adjust_brightness(x, factors[0]),
      lambda x: adjust_contrast(x, factors[1]),
      lambda x: adjust_saturation(x, factors[2]),
      lambda x: adjust_hue(x, hue_delta),
  ]
  order = jnp.argsort(u[4:])
  for i in range(4):
    image = jnp.clip(jax.lax.switch(order[i], ops, image), 0.0, 1.0)
  return image


def to_grayscale(image):
  luma = image @ jnp.array(augment.GRAYSCALE_WEIGHTS, image.dtype)
  return jnp.repeat(luma[..., None], 3, axis=-1)


# ------------------------------------------------------------------ blur ----
def _blur_matrix(sigma, radius, n):
  """As `augment._blur_matrix`: a Gaussian along one axis with reflected borders."""
  i = jnp.arange(n)[:, None]
  j = jnp.arange(n)[None, :]

  def taps(distance):
    distance = distance.astype(jnp.float32)
    return jnp.where(jnp.abs(distance) <= radius, jnp.exp(-distance**2 / (2.0 * sigma**2)), 0.0)

  matrix = (taps(j - i) + jnp.where(j > 0, taps(i + j), 0.0)
            + jnp.where(j < n - 1, taps(2 * (n - 1) - i - j), 0.0))
  return matrix / jnp.sum(matrix, axis=1, keepdims=True)


def gaussian_blur(image, sigma, radius=None):
  """Separable blur with reflected borders; by default a kernel side of 10% of the image side
  (SimCLR)."""
  height, width = image.shape[:2]
  radius = augment.blur_radius(height) if radius is None else radius
  rows = _blur_matrix(sigma, radius, height)
  cols = _blur_matrix(sigma, radius, width)
  image = jnp.einsum("ij,jwc->iwc", rows, image)
  return jnp.einsum("wj,hjc->hwc", cols, image)


def random_gaussian_blur(image, key, prob, sigma_range=(0.1, 2.0)):
  def blur(x, blur_key):
    return gaussian_blur(x, jax.random.uniform(blur_key, minval=sigma_range[0],
                                               maxval=sigma_range[1]))
  return random_apply(blur, image, key, prob)


def highpass(image, sigma_fraction):
  """As `augment.highpass`: the image minus its wide blur, around mid-grey."""
  side = min(image.shape[:2])
  sigma = sigma_fraction * side
  blurred = gaussian_blur(image, sigma, augment.highpass_radius(side, sigma))
  return jnp.clip(image - blurred + 0.5, 0.0, 1.0)


def add_lighting(image, angle, colour, strength):
  """As `augment.add_lighting`: a linear colour ramp along `angle`."""
  height, width = image.shape[:2]
  y = jnp.linspace(-0.5, 0.5, height)[:, None]
  x = jnp.linspace(-0.5, 0.5, width)[None, :]
  ramp = x * jnp.cos(angle) + y * jnp.sin(angle)
  return jnp.clip(image + strength * ramp[..., None] * colour, 0.0, 1.0)


def random_lighting(image, key, strength):
  """As `augment.random_lighting`: a direction uniform on the circle, a colour in [-1, 1]^3."""
  angle_key, colour_key = jax.random.split(key)
  angle = jax.random.uniform(angle_key, maxval=2 * math.pi)
  colour = jax.random.uniform(colour_key, (3,), minval=-1.0, maxval=1.0)
  return add_lighting(image, angle, colour, strength)


def solarize(image, threshold=0.5):
  return jnp.where(image < threshold, image, 1.0 - image)


# ----------------------------------------------------------------- views ----
def colour_view(image, key, augment_config, probs):
  """The part of `augment.simclr_view` after crop and flip, on one float image; `probs`
  carries each op's probability (see `augment.colour_view`)."""
  cfg = augment_config
  color_key, gray_key, blur_key, solarize_key = jax.random.split(key, 4)
  if cfg.highpass_prob > 0:
    image = random_apply(lambda x, _: highpass(x, cfg.highpass_sigma), image,
                         jax.random.fold_in(blur_key, 1), cfg.highpass_prob)
  if cfg.lighting_prob > 0:
    image = random_apply(lambda x, k: random_lighting(x, k, cfg.lighting_strength), image,
                         jax.random.fold_in(blur_key, 2), cfg.lighting_prob)
  image = random_apply(lambda x, k: color_jitter(x, k, cfg.color_strength, tuple(cfg.jitter)),
                       image, color_key, probs.color_prob)
  image = random_apply(lambda x, _: to_grayscale(x), image, gray_key, probs.grayscale_prob)
  if probs.blur_prob > 0:
    image = random_gaussian_blur(image, blur_key, probs.blur_prob)
  if probs.solarize_prob > 0:
    image = random_apply(lambda x, _: solarize(x), image, solarize_key, probs.solarize_prob)
  return jnp.clip(image, 0.0, 1.0)


def full_view(image, key, augment_config, size, area_range, probs):
  """Crop, flip and colour on the device: the whole of `augment.simclr_view`."""
  cfg = augment_config
  crop_key, flip_key, colour_key = jax.random.split(key, 3)
  image = random_resized_crop(image, crop_key, size, area_range, (cfg.aspect_min, cfg.aspect_max))
  if cfg.flip:
    image = random_flip(image, flip_key)
  return colour_view(image, colour_key, augment_config, probs)


def to_float(images):
  """uint8 [0, 255] -> float32 [0, 1]; float input passes through."""
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 255.0
  return images


# ---------------------------------------------------------- whole batches ----
_SHUFFLE_STREAM, _AUGMENT_STREAM = 1, 2  # independent key streams from one seed


def resolve_path(data_config, source, backend):
  """The augmentation path a run takes: `auto` is the host on CPU, else the
  devices, with the dataset resident there when it is already in memory."""
  path = data_config.augment.path
  if path != "auto":
    return path
  if backend == "cpu":
    return "host"
  return "resident" if source.arrays("train") is not None else "device"


def example_keys(seed, step, first_index, count):
  """One key per example, from (seed, step, the example's index in the global batch)."""
  stream = jax.random.fold_in(jax.random.key(seed), _AUGMENT_STREAM)
  base = jax.random.fold_in(stream, step)
  return jax.vmap(lambda i: jax.random.fold_in(base, i))(first_index + jnp.arange(count))


def _views_for(groups, view_fn, images, keys):
  """Every group's views of [b, ...] images: view_fn(group, image, key) vmapped twice."""
  out = {}
  for index, group in enumerate(groups):
    batch = keys.shape[0]
    if group.count == 0:
      out[group.name] = jnp.zeros((batch, 0, group.size, group.size, 3), jnp.float32)
      continue
    group_keys = jax.vmap(lambda k, i=index, n=group.count:
                          jax.random.split(jax.random.fold_in(k, i), n))(keys)
    source = images(group)  # [b, count, ...] or [b, ...] shared by the group
    per_view = (lambda img, k, g=group: view_fn(g, img, k))
    if source.ndim == 5:
      views = jax.vmap(jax.vmap(per_view))(source, group_keys)
    else:
      views = jax.vmap(jax.vmap(per_view, in_axes=(None, 0)))(source, group_keys)
    out[group.name] = views if group.stacked else views[:, 0]
  return out


def make_prepare(data_config, mesh, seed, path, global_batch_size):
  """(batch, step) -> the views batch the method reads, inside the jitted step; None when
  the host already sent that batch.

  host: the host made the views; only view transforms (data.transforms) happen here.
  device: the host sent uint8 crops, flipped; colour, grayscale, blur and solarize
  happen here. resident: the batch is the dataset itself ({'images', 'labels',
  'indices'}, sharded), and each device draws its share of step `step`'s batch from its
  own shard and augments it whole. Every path ends with the view transforms.
  """
  groups = pipeline.view_groups(data_config)
  transform = transforms.sharded_apply(groups, mesh, seed)
  if path == "host":
    if not any(g.transform for g in groups):
      return None
    return transform
  aug = data_config.augment
  axis = parallel.DATA_AXIS

  def colour(group, image, key):
    return colour_view(to_float(image), key, aug, group)

  def full(group, image, key):
    return full_view(to_float(image), key, aug, group.size, group.area_range, group)

  def device_local(views, step):
    batch = jax.tree.leaves(views)[0].shape[0]
    keys = example_keys(seed, step, jax.lax.axis_index(axis) * batch, batch)
    return _views_for(groups, colour, lambda g: views[g.name][:, None] if not g.stacked
                      else views[g.name], keys)

  def resident_local(images, labels, indices, step, batch):
    device = jax.lax.axis_index(axis)
    rows = _epoch_order(seed, device, step, batch, images.shape[0])
    keys = example_keys(seed, step, device * batch, batch)
    chosen = images[rows]
    out = _views_for(groups, full, lambda g: chosen, keys)
    return {**out, "label": labels[rows], "index": indices[rows]}

  spec = P(axis)
  if path == "device":
    def prepare(batch, step):
      views = {g.name: batch[g.name] for g in groups}
      run = jax.shard_map(device_local, mesh=mesh, in_specs=(spec, P()), out_specs=spec)
      rest = {k: v for k, v in batch.items() if k not in views}
      return transform({**rest, **run(views, step)}, step)
    return prepare

  local = global_batch_size // mesh.size

  def prepare(data, step):
    run = jax.shard_map(
        lambda images, labels, indices, s: resident_local(images, labels, indices, s, local),
        mesh=mesh, in_specs=(spec, spec, spec, P()), out_specs=spec)
    return transform(run(data["images"], data["labels"], data["indices"], step), step)
  return prepare


def resident_dataset(source, mesh, global_batch_size):
  """The training split as uint8 images, labels and indices on the devices, sharded over
  'data'.

  Each device keeps len // devices examples; the remainder (< devices) is left out.
  """
  if source.num_train // mesh.size < global_batch_size // mesh.size:
    raise ValueError(f"config.train.batch_size={global_batch_size} needs "
                     f"{global_batch_size // mesh.size} examples on each of {mesh.size} devices "
                     f"with config.data.augment.path='resident', but {source.name} has "
                     f"{source.num_train // mesh.size} per device")
  arrays = source.arrays("train")
  if arrays is not None:  # in-memory arrays are in split order
    arrays = (*arrays, np.arange(len(arrays[1]), dtype=np.int32))
  else:
    try:
      arrays = _read_all(source.dataset("train"))
    except tf.errors.InvalidArgumentError:  # batching images of different shapes
      raise ValueError(f"config.data.augment.path='resident' needs images of one shape, and "
                       f"{source.name}'s differ; use path 'device'.") from None
  images, labels, indices = arrays
  kept = len(labels) // mesh.size * mesh.size
  sharding = parallel.batch_sharding(mesh)

  def place(array):
    array = array[:kept]
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])

  return {"images": place(np.asarray(images, np.uint8)),
          "labels": place(np.asarray(labels, np.int32)), "indices": place(indices)}


def _read_all(dataset):
  parts = {"image": [], "label": [], "index": []}
  for batch in dataset.batch(4096).as_numpy_iterator():
    for key, values in parts.items():
      values.append(batch[key])
  return tuple(np.concatenate(values) for values in parts.values())


def _epoch_order(seed, device, step, batch, shard_size):
  """Indices into a device's shard for its `batch` examples of step `step`.

  The device's examples form one stream, epoch after epoch, each epoch a
  permutation drawn from (seed, device, epoch); a batch spans at most two.
  """
  positions = step * batch + jnp.arange(batch)
  first_epoch = (step * batch) // shard_size
  key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), _SHUFFLE_STREAM), device)

  def order(epoch):
    return jax.random.permutation(jax.random.fold_in(key, epoch), shard_size)

  offsets = positions % shard_size
  return jnp.where(positions // shard_size == first_epoch, order(first_epoch)[offsets],
                   order(first_epoch + 1)[offsets])
