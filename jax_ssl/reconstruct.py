"""What an MAE sees and what it fills in, as a picture.

  python -m jax_ssl.reconstruct --workdir=<MAE pretraining workdir> --out=x.png --num_images=8

Each row holds a test image (spread evenly over the split), the image with its hidden
patches grey (the encoder sees the rest), the decoder's prediction of every patch, and
that prediction with the visible patches pasted back (the official visualisation's last
panel). With per-patch normalised targets (config.mae.norm_pix_loss) a predicted patch is
brought back to pixels with the mean and variance of the original patch at its place, as
the official visualisation does. Masks come from --seed, each image its own.
"""
import jax
import jax.numpy as jnp
import numpy as np
import tensorflow as tf
from absl import app, flags

from jax_ssl import cli, data, export, losses, retrieve
from jax_ssl.methods import mae

GREY = 0.5
WHITE = (255, 255, 255)
MIN_TILE = 64  # pixels of a tile's side, at least


def to_pixels(predicted, patches, norm_pix):
  """Predicted patches [B, L, P] in pixel space: un-normalised with each original patch's
  own mean and variance when the targets were normalised."""
  if not norm_pix:
    return predicted
  _, mean, var = losses.normalized_patches(patches)
  return predicted * jnp.sqrt(var + losses.NORM_PIX_EPS) + mean


def panels(images, predicted, mask, patch_size, norm_pix):
  """(masked input, reconstruction, reconstruction with visible patches pasted), each
  [B, H, W, 3] in [0, 1]."""
  patches = mae.patchify(images, patch_size)
  hidden = mask[..., None]
  recon = to_pixels(predicted, patches, norm_pix)
  masked = patches * (1 - hidden) + GREY * hidden
  pasted = patches * (1 - hidden) + recon * hidden
  return tuple(jnp.clip(mae.unpatchify(x, patch_size), 0.0, 1.0)
               for x in (masked, recon, pasted))


def reconstruct(config, params, images, rng):
  """`panels` for `images` under masks drawn from `rng`."""
  patch = config.model.patch_size
  num_patches = (images.shape[1] // patch) ** 2
  keep, mask = mae.random_masking(rng, images.shape[0], num_patches, config.mae.mask_ratio)
  _, predicted = mae.create_model(config).apply({"params": params}, images, train=False,
                                                keep=keep)
  return panels(images, predicted, mask, patch, config.mae.norm_pix_loss)


def test_images(config, count):
  """`count` test images spread evenly over the split, in evaluation preprocessing."""
  source = data.make_source(config.data)
  positions = np.unique(np.linspace(0, source.num_test - 1, count).astype(int))
  found = retrieve.images_at(config, source, "test", positions)
  return np.stack([found[p] for p in positions if p in found])


def reconstruction_grid(workdir, num_images, seed=0):
  """The picture (uint8 [H, W, 3]) for the latest checkpoint of an MAE workdir."""
  config = export.read_run_config(workdir)
  if config.method != "mae":
    raise ValueError(f"{workdir} holds a {config.method!r} run; reconstruct needs config.method="
                     "'mae'")
  _, state = export.restore_latest(workdir)
  images = test_images(config, num_images)
  columns = (images,) + reconstruct(config, state["params"], jnp.asarray(images),
                                    jax.random.key(seed))
  scale = max(1, -(-MIN_TILE // images.shape[1]))
  rows = [[retrieve.tile(np.asarray(column[i]), WHITE, scale) for column in columns]
          for i in range(len(images))]
  return retrieve.grid(rows)


def main(argv):
  del argv
  f = flags.FLAGS
  tf.config.set_visible_devices([], "GPU")  # tf.data stays on the host
  picture = reconstruction_grid(f.workdir, f.num_images, f.seed)
  retrieve.write_png(f.out, picture)
  print(f.out)


if __name__ == "__main__":
  flags.DEFINE_string("workdir", None, "An MAE pretraining workdir with a checkpoint.")
  flags.DEFINE_integer("num_images", 8, "How many test images to show, one a row.")
  flags.DEFINE_integer("seed", 0, "Seed of the masks.")
  flags.DEFINE_string("out", "reconstruction.png", "Where to write the PNG.")
  flags.mark_flag_as_required("workdir")
  app.run(main, flags_parser=cli.quiet_flags)
