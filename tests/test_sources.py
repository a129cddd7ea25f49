"""Reading images: formats and modes, windowed decoding, undecoded mode, corrupt files."""
import functools
import io
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from jax_ssl.config import base_config
from jax_ssl.data import augment, make_source, sources
from jax_ssl.data.sources import decode, decode_window

RNG = np.random.default_rng(0)
NOISE = RNG.integers(0, 256, (13, 17, 4), np.uint8)  # odd sizes: no block alignment
YY, XX = np.mgrid[0:48, 0:64]
GRADIENT = np.stack([XX * 4, YY * 5, (XX + YY) * 2], -1).astype(np.uint8)


def data_config(source):
  cfg = base_config().data
  cfg.source = source
  return cfg


def pil_encode(pixels, fmt, mode=None, **options):
  image = Image.fromarray(pixels)
  if mode is not None:
    image = image.convert(mode)
  buffer = io.BytesIO()
  image.save(buffer, fmt, **options)
  return buffer.getvalue()


def pil_decode(encoded):
  return np.asarray(Image.open(io.BytesIO(encoded)).convert('RGB'))


def decode_in_graph(encoded):
  """decode inside a tf.data map, as the sources run it."""
  ds = tf.data.Dataset.from_tensors(encoded).map(decode)
  return next(iter(ds)).numpy()


def write(path, data):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)


# -------------------------------------------------------------- decode ----
def png_cases():
  gray, gray_alpha, rgb, rgba = (NOISE[..., :1], NOISE[..., :2], NOISE[..., :3], NOISE)
  wide = RNG.integers(0, 65536, (13, 17, 4)).astype(np.uint16)
  wide[0, :4, :] = [[0], [65535], [257 * 7], [257 * 200 + 128]]  # 0, 255, 7, round(200.498) = 200
  scaled = np.round(wide / 257).astype(np.uint8)
  rgb_of = lambda x: np.repeat(x, 3, -1) if x.shape[-1] == 1 else x
  return {
      'gray': (tf.io.encode_png(gray), rgb_of(gray)),
      'gray+alpha': (tf.io.encode_png(gray_alpha), rgb_of(gray)),
      'rgb': (tf.io.encode_png(rgb), rgb),
      'rgba': (tf.io.encode_png(rgba), rgb),
      'palette': (pil_encode(rgb, 'PNG', 'P'), pil_decode(pil_encode(rgb, 'PNG', 'P'))),
      '16-bit gray': (tf.io.encode_png(wide[..., :1]), rgb_of(scaled[..., :1])),
      '16-bit gray+alpha': (tf.io.encode_png(wide[..., :2]), rgb_of(scaled[..., :1])),
      '16-bit rgb': (tf.io.encode_png(wide[..., :3]), scaled[..., :3]),
      '16-bit rgba': (tf.io.encode_png(wide), scaled[..., :3]),
  }


@pytest.mark.parametrize('case', list(png_cases()))
def test_decode_png_modes_give_exact_rgb(case):
  encoded, want = png_cases()[case]
  encoded = encoded.numpy() if isinstance(encoded, tf.Tensor) else encoded
  assert encoded.startswith(sources.PNG_MAGIC)
  got = decode_in_graph(encoded)
  assert got.dtype == np.uint8 and got.shape == (13, 17, 3)
  np.testing.assert_array_equal(got, want)
  if case.startswith('16-bit'):
    np.testing.assert_array_equal(got[0, :4, 0], [0, 255, 7, 200])


@pytest.mark.parametrize('fmt,mode', [
    ('GIF', 'L'), ('GIF', 'RGB'), ('GIF', 'P'),
    ('BMP', 'L'), ('BMP', 'RGB'), ('BMP', 'RGBA'), ('BMP', 'P')])
def test_decode_gif_and_bmp_give_exact_rgb(fmt, mode):
  """GIF (palette) and BMP (8-bit palette, 24 and 32 bits) as PIL reads them."""
  pixels = NOISE[..., 0] if mode == 'L' else NOISE if mode == 'RGBA' else NOISE[..., :3]
  encoded = pil_encode(pixels, fmt, mode)
  got = decode_in_graph(encoded)
  assert got.dtype == np.uint8 and got.shape == (13, 17, 3)
  want = pil_decode(encoded)
  np.testing.assert_array_equal(got, want)
  if mode == 'P':  # colours from the palette, not palette indices as gray levels
    assert (got[..., 0] != got[..., 1]).any()


@pytest.mark.parametrize('mode', ['L', 'RGB', 'CMYK'])
def test_decode_jpeg_modes_give_rgb(mode):
  pixels = GRADIENT[..., 0] if mode == 'L' else GRADIENT
  encoded = pil_encode(pixels, 'JPEG', mode, quality=95)
  got = decode_in_graph(encoded)
  assert got.dtype == np.uint8 and got.shape == (48, 64, 3)
  want = np.repeat(pixels[..., None], 3, -1) if mode == 'L' else pixels
  error = np.abs(got.astype(int) - want)  # JPEG at quality 95 on a smooth image
  assert error.mean() < 1.5 and error.max() <= 8


def test_decode_rejects_unknown_bytes():
  with pytest.raises(tf.errors.InvalidArgumentError):
    decode(b'not an image at all')


# ---------------------------------------------------- decode a window ----
def decode_and_crop(encoded, box_fn):
  """The window box_fn(height, width) picks, through `decode_window`."""
  window, _ = decode_window(encoded, lambda height, width: (box_fn(height, width), ()))
  return window


def crop_pairs(encoded, count=30):
  """(decode_window, decode then slice) for `count` random windows, in a tf.data map.

  The windows are drawn as a random resized crop draws them.
  """
  encoded = tf.constant(encoded)

  def crops(seed):
    box_fn = functools.partial(augment.sample_crop_box, seed, area_range=(0.05, 1.0))
    whole = decode(encoded)
    shape = tf.shape(whole)
    top, left, height, width = box_fn(shape[0], shape[1])
    return decode_and_crop(encoded, box_fn), whole[top:top + height, left:left + width]

  seeds = tf.random.experimental.stateless_split([3, 4], count)
  return tf.data.Dataset.from_tensor_slices(seeds).map(crops).as_numpy_iterator()


@pytest.mark.parametrize('fmt', ['PNG', 'GIF', 'BMP', 'JPEG 4:4:4', 'JPEG gray'])
def test_decode_and_crop_equals_decode_then_slice(fmt):
  if fmt.startswith('JPEG'):
    pixels = GRADIENT[..., 0] if fmt == 'JPEG gray' else GRADIENT
    encoded = pil_encode(pixels, 'JPEG', quality=90, subsampling=0)
  else:
    encoded = pil_encode(GRADIENT, fmt)
  sizes = set()
  for windowed, sliced in crop_pairs(encoded):
    assert windowed.dtype == np.uint8 and windowed.shape[-1] == 3
    np.testing.assert_array_equal(windowed, sliced)
    sizes.add(windowed.shape)
  assert len(sizes) > 10  # the windows did vary


@pytest.mark.parametrize('image,border_tolerance', [(GRADIENT, 4), (NOISE[..., :3], 255)])
def test_decode_and_crop_jpeg_with_subsampled_chroma(image, border_tolerance):
  """4:2:0 JPEG: equal inside the window; only its outermost rows and columns may differ.

  Measured over 1,800 random windows: at most 2 levels (quality 90) and 4 (quality 50)
  on a smooth gradient, up to about 80 on noise or sharp colour edges.
  """
  encoded = tf.io.encode_jpeg(image, quality=90, chroma_downsampling=True).numpy()
  differs = False
  for windowed, sliced in crop_pairs(encoded, count=60):
    assert windowed.shape == sliced.shape
    diff = np.abs(windowed.astype(int) - sliced)
    np.testing.assert_array_equal(diff[1:-1, 1:-1], 0)
    assert diff.max() <= border_tolerance
    differs |= diff.any()
  assert differs  # the border case is real, or this test would not be needed


def test_decode_and_crop_rejects_windows_outside_the_image():
  outside = lambda height, width: (height - 2, 0, 4, width)
  for encoded in (tf.io.encode_png(GRADIENT), tf.io.encode_jpeg(GRADIENT)):
    with pytest.raises(tf.errors.InvalidArgumentError):
      decode_and_crop(encoded, outside)


# --------------------------------------------------- undecoded sources ----
def test_folder_source_gives_file_bytes_undecoded(tmp_path):
  files = {'train/a/0.png': tf.io.encode_png(NOISE[..., :3]).numpy(),
           'train/b/1.jpg': tf.io.encode_jpeg(GRADIENT).numpy(),
           'train/b/2.bmp': pil_encode(NOISE[..., :3], 'BMP'),
           'test/a/3.gif': pil_encode(NOISE[..., :3], 'GIF')}
  for name, data in files.items():
    write(f'{tmp_path}/{name}', data)
  source = make_source(data_config(f'folder:{tmp_path}'))
  assert source.encoded and source.arrays('train') is None
  encoded = list(source.dataset('train', decoded=False).as_numpy_iterator())
  assert [sorted(e) for e in encoded] == [['encoded', 'index', 'label']] * 3
  assert [e['encoded'] for e in encoded] == [files['train/a/0.png'], files['train/b/1.jpg'],
                                            files['train/b/2.bmp']]
  assert [e['label'] for e in encoded] == [0, 1, 1]
  decoded = list(source.dataset('train').as_numpy_iterator())
  for e, d in zip(encoded, decoded):
    np.testing.assert_array_equal(d['image'], decode(e['encoded']))
    assert d['label'] == e['label']
  # Sharded like the decoded dataset.
  second = list(source.dataset('train', 1, 2, decoded=False).as_numpy_iterator())
  assert [e['encoded'] for e in second] == [files['train/b/1.jpg']]


def test_tfds_source_gives_encoded_images_under_mock_data():
  with tfds.testing.mock_data(num_examples=6):
    source = make_source(data_config('tfds:mnist'))
    assert source.encoded and source.arrays('train') is None
    encoded = list(source.dataset('train', decoded=False).as_numpy_iterator())
    decoded = list(source.dataset('train').as_numpy_iterator())
  assert len(encoded) == len(decoded) == 6
  for e, d in zip(encoded, decoded):
    assert sorted(e) == ['encoded', 'index', 'label'] and e['label'].dtype == np.int32
    assert e['encoded'].startswith(sources.PNG_MAGIC)
    gray = tf.io.decode_png(e['encoded']).numpy()
    assert gray.shape == (28, 28, 1)
    np.testing.assert_array_equal(d['image'], np.repeat(gray, 3, -1))
    assert d['label'] == e['label']


def test_builtin_source_is_in_memory_arrays():
  source = make_source(data_config('builtin:mnist'))
  assert not source.encoded
  images, labels = source.arrays('train')
  assert images.shape == (4000, 28, 28, 3) and images.dtype == np.uint8
  assert labels.shape == (4000,) and labels.dtype == np.int32
  assert not images.flags.writeable and not labels.flags.writeable
  assert len(source.arrays('test')[0]) == 1000
  first = next(iter(source.dataset('train', 1, 2, decoded=False)))  # flag ignored
  assert sorted(first) == ['image', 'index', 'label']
  np.testing.assert_array_equal(first['image'], images[1])
  assert first['label'] == labels[1]
  with pytest.raises(ValueError, match='split'):
    source.arrays('validation')


# ------------------------------------------------------- corrupt files ----
def corrupt_files():
  """Files with the right first bytes and broken contents."""
  jpeg = tf.io.encode_jpeg(NOISE[..., :3]).numpy()
  png = tf.io.encode_png(NOISE[..., :3]).numpy()
  gif = pil_encode(NOISE[..., :3], 'GIF')
  bmp = pil_encode(NOISE[..., :3], 'BMP')
  noise = RNG.integers(0, 256, 400, np.uint8).tobytes()
  return {'truncated.jpg': jpeg[:len(jpeg) // 2],
          'almost_whole.jpg': jpeg[:-4],
          'noise_after_header.png': png[:8] + noise,
          'truncated.png': png[:-20],
          'truncated.gif': gif[:len(gif) // 2],
          'truncated.bmp': bmp[:-8],
          'noise_after_header.bmp': b'BM' + noise}


@pytest.mark.parametrize('name', list(corrupt_files()))
def test_corrupt_files_raise_invalid_argument(name):
  encoded = corrupt_files()[name]
  with pytest.raises(tf.errors.InvalidArgumentError):
    decode_in_graph(encoded)
  # Windowed decoding fails too, at least for a window reaching the image's end.
  whole = lambda height, width: (0, 0, height, width)
  with pytest.raises(tf.errors.InvalidArgumentError):
    decode_and_crop(encoded, whole)


def test_ignore_errors_skips_exactly_the_corrupt_files(tmp_path):
  good = {}
  for i, fmt in enumerate(['png', 'jpg', 'gif', 'bmp', 'png']):
    value = 40 * (i + 1)
    pixels = np.full((6, 9, 3), value, np.uint8)
    data = (tf.io.encode_png(pixels).numpy() if fmt == 'png' else
            tf.io.encode_jpeg(pixels).numpy() if fmt == 'jpg' else pil_encode(pixels, fmt.upper()))
    good[f'good{i}.{fmt}'] = (data, value)
  bad = corrupt_files()
  # Sorted names interleave the good and the corrupt files.
  for name, (data, _) in good.items():
    write(f'{tmp_path}/train/c/{name}', data)
  for name, data in bad.items():
    write(f'{tmp_path}/train/c/{name}', data)
  write(f'{tmp_path}/test/c/x.png', good['good0.png'][0])
  source = make_source(data_config(f'folder:{tmp_path}'))  # readable: no error
  assert source.num_train == len(good) + len(bad) == 12

  with pytest.raises(tf.errors.InvalidArgumentError):
    list(source.dataset('train'))
  images = list(source.dataset('train').ignore_errors().as_numpy_iterator())
  assert len(images) == len(good)
  assert source.num_train - len(images) == len(bad)  # the skipped count
  assert sorted(int(x['image'].mean().round()) for x in images) == [40, 80, 120, 160, 200]
  # How a pipeline finds which examples it skipped: gaps in an enumeration.
  names = sorted(list(good) + list(bad))
  positions = source.dataset('train', decoded=False).enumerate().map(
      lambda i, x: (i, decode(x['encoded']))).ignore_errors()
  kept = [int(i) for i, _ in positions.as_numpy_iterator()]
  assert sorted(set(range(12)) - set(kept)) == [names.index(n) for n in sorted(bad)]


def test_folder_without_a_decodable_image_fails_early(tmp_path):
  bad = corrupt_files()
  for name, data in bad.items():
    write(f'{tmp_path}/train/c/{name}', data)
  write(f'{tmp_path}/test/c/x.png', tf.io.encode_png(NOISE[..., :3]).numpy())
  with pytest.raises(ValueError) as error:
    make_source(data_config(f'folder:{tmp_path}'))
  message = str(error.value)
  assert f"folder '{tmp_path}/train'" in message
  assert "split 'train'" in message and f'tried all {len(bad)}' in message
  first = sorted(bad)[0]  # almost_whole.jpg: libjpeg's complaint
  assert f'{tmp_path}/train/c/{first}' in message and 'JPEG' in message
  assert '{{' not in message and '[Op:' not in message

  # A readable train split does not excuse an unreadable test split.
  os.remove(f'{tmp_path}/test/c/x.png')
  write(f'{tmp_path}/test/c/y.png', bad['truncated.png'])
  write(f'{tmp_path}/train/c/z.png', tf.io.encode_png(NOISE[..., :3]).numpy())
  with pytest.raises(ValueError, match=r"split 'test'.*tried all 1;.*y\.png.*PNG"):
    make_source(data_config(f'folder:{tmp_path}'))


def test_a_healthy_folder_decodes_one_file_per_split(tmp_path, monkeypatch):
  for i in range(5):
    for split in ('train', 'test'):
      write(f'{tmp_path}/{split}/c/{i}.png', tf.io.encode_png(NOISE[..., :3]).numpy())
  calls = []
  monkeypatch.setattr(sources, 'decode', lambda data: calls.append(1) or decode(data))
  make_source(data_config(f'folder:{tmp_path}'))
  assert len(calls) == 2


def test_files_that_are_not_images_are_left_out_with_one_warning(tmp_path, caplog):
  write(f'{tmp_path}/train/cat/x.png', tf.io.encode_png(NOISE[..., :3]).numpy())
  write(f'{tmp_path}/test/cat/y.png', tf.io.encode_png(NOISE[..., :3]).numpy())
  write(f'{tmp_path}/train/cat/empty.png', b'')  # a copy cut short: an image that fails
  for i in range(12):  # an image's extension, not its content
    write(f'{tmp_path}/train/cat/fake{i:02d}.jpg', b'no')
  with caplog.at_level('WARNING'):
    source = make_source(data_config(f'folder:{tmp_path}'))
  assert source.num_train == 2  # x.png and empty.png
  warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
  assert len(warnings) == 1
  assert '12 of 15 files are not JPEG, PNG, GIF or BMP' in warnings[0]
  assert f'{tmp_path}/train/cat/fake00.jpg' in warnings[0] and 'and 2 more' in warnings[0]
  assert 'empty.png' not in warnings[0]

  strict = data_config(f'folder:{tmp_path}')
  strict.on_bad_file = 'error'
  with pytest.raises(ValueError, match=r"12 of 15 files are not.*fake00\.jpg.*and 2 more.*"
                                       r"on_bad_file='skip' leaves them out"):
    make_source(strict)


def test_a_split_of_non_images_fails_early(tmp_path):
  write(f'{tmp_path}/train/c/a.png', tf.io.encode_png(NOISE[..., :3]).numpy())
  write(f'{tmp_path}/test/c/b.txt', b'hello')
  with pytest.raises(ValueError, match=r"split 'test' has no images: 1 of 2 files are not "
                                       r'JPEG, PNG, GIF or BMP.*b\.txt'):
    make_source(data_config(f'folder:{tmp_path}'))


# --------------------------------------------------------- small images ----
def test_random_resized_crop_upscales_images_smaller_than_the_crop():
  flat = tf.fill([5, 7, 3], 0.25)
  for seed in range(3):
    out = augment.random_resized_crop(flat, tf.constant([seed, 1]), size=32).numpy()
    np.testing.assert_allclose(out, np.full((32, 32, 3), 0.25), atol=1e-5)
  yy, xx = np.mgrid[0:5, 0:7] / 10
  image = tf.constant(np.stack([xx, yy, xx + yy], -1), tf.float32)  # steps of 0.1
  out = augment.random_resized_crop(image, tf.constant([1, 2]), size=32).numpy()
  assert out.shape == (32, 32, 3)
  # A smooth upscale of the crop: small steps between neighbouring pixels (bicubic may
  # overshoot the crop's range by a little).
  assert np.abs(np.diff(out, axis=1)).max() < 0.1 and np.unique(out[..., 1]).size > 16


def test_colour_digits_are_balanced_rgb_and_colour_varies_within_every_class():
  source = make_source(data_config('builtin:colour_digits'))
  assert (source.num_classes, source.num_train, source.num_test) == (10, 4000, 1000)
  for split, per_class in (('train', 400), ('test', 100)):
    images, labels = source.arrays(split)
    assert images.shape[1:] == (32, 32, 3) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [per_class] * 10
    for label in range(10):
      of_class = images[labels == label].astype(np.float32)
      # Colour: channels differ within images, and mean colours spread across the class.
      assert np.abs(of_class[..., 0] - of_class[..., 2]).mean() > 10
      assert of_class.mean((1, 2)).std(0).min() > 20
      # Position: the class's images do not share one place for the digit.
      assert of_class.std(0).mean() > 40


def test_colour_digits_are_the_same_for_the_same_seed():
  from jax_ssl.data import builtin  # noqa: PLC0415
  pixels, _ = builtin.mnist_digits()
  photos = builtin.photographs()
  make = lambda seed: np.stack([builtin.colour_digit(p, photos, np.random.default_rng(seed))
                                for p in pixels[:20]])
  np.testing.assert_array_equal(make(3), make(3))
  assert not np.array_equal(make(3), make(4))
