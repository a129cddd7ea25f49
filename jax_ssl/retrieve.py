"""Nearest neighbours in the learned embedding, as a picture.

  python -m jax_ssl.retrieve --workdir=<pretraining workdir> --queries=8 --out=neighbours.png

Each row holds a test image (framed white) and then its --neighbours nearest training
images by cosine similarity of the encoder's features, best first, framed green where
their label is the query's and red where it is not. Queries are spread evenly over the
test split. Images are shown as the encoder sees them at test time (resized, centre-cropped).
"""
import jax
import numpy as np
import tensorflow as tf
from absl import app, flags
from jax.experimental import multihost_utils

from jax_ssl import cli, data, evaluate, export, parallel

WHITE, GREEN, RED = (255, 255, 255), (40, 200, 60), (220, 40, 40)
BORDER, GAP, MIN_TILE = 2, 4, 64  # pixels of the frame, between tiles, and the least tile side


def images_at(config, source, split, positions):
  """{position: float32 image} of the split's examples at `positions`, in eval
  preprocessing."""
  wanted, found = set(int(i) for i in positions), {}
  batches = data.eval_batches(config.data, source, split, local_batch_size=config.eval.batch_size)
  for batch in batches:
    for image, position, valid in zip(batch["image"], batch["index"], batch["mask"]):
      if valid and int(position) in wanted:
        found[int(position)] = image
  return found


def tile(image, colour, scale):
  """A float [0, 1] image -> uint8, upscaled `scale` times and framed in `colour`."""
  pixels = np.repeat(np.repeat(np.round(image * 255).astype(np.uint8), scale, 0), scale, 1)
  framed = np.empty((pixels.shape[0] + 2 * BORDER, pixels.shape[1] + 2 * BORDER, 3), np.uint8)
  framed[:] = colour
  framed[BORDER:-BORDER, BORDER:-BORDER] = pixels
  return framed


def grid(rows):
  """Rows of equally sized tiles -> one uint8 image, with a wider gap after the queries."""
  height, width = rows[0][0].shape[:2]
  columns = len(rows[0])
  canvas = np.zeros((len(rows) * (height + GAP) + GAP, columns * (width + GAP) + 3 * GAP, 3),
                    np.uint8)
  for r, row in enumerate(rows):
    for c, image in enumerate(row):
      top = GAP + r * (height + GAP)
      left = GAP + c * (width + GAP) + (2 * GAP if c else 0)
      canvas[top:top + height, left:left + width] = image
  return canvas


def neighbour_grid(workdir, queries, neighbours):
  """The picture (uint8 [H, W, 3]) for the encoder of a pretraining workdir."""
  config = export.read_run_config(workdir)
  folder = export.find_export(workdir) or export.export_from_workdir(workdir)
  source = data.make_source(config.data)
  mesh = parallel.make_mesh()
  backbone, variables, _ = export.load_encoder(folder, mesh)
  encode = jax.jit(lambda images: backbone.apply(variables, images, train=False))
  train = evaluate.split_features(encode, config, source, "train", mesh)
  test = evaluate.split_features(encode, config, source, "test", mesh)
  # Spread over the split's positions; an image that failed to decode is left out.
  spread = np.unique(np.linspace(0, source.num_test - 1, queries).astype(int))
  query_x, query_y, found = (np.asarray(a) for a in evaluate.at_positions(test, spread))
  chosen, query_y = spread[found], query_y[found]
  _, labels, index = evaluate.nearest_neighbours(
      train, evaluate.from_host(query_x[found], query_y, mesh), neighbours)
  # The queries' rows of the sharded results; every process gets them all.
  labels, index = (multihost_utils.process_allgather(a, tiled=True)[:len(chosen)]
                   for a in (labels, index))
  query_images = images_at(config, source, "test", chosen)
  train_images = images_at(config, source, "train", index.ravel())
  scale = max(1, -(-MIN_TILE // config.data.image_size))
  rows = []
  for q, label, row, row_labels in zip(chosen, query_y, index, labels):
    tiles = [tile(query_images[q], WHITE, scale)]
    tiles += [tile(train_images[i], GREEN if neighbour == label else RED, scale)
              for i, neighbour in zip(row, row_labels)]
    rows.append(tiles)
  return grid(rows)


def write_png(path, image):
  tf.io.write_file(path, tf.io.encode_png(image))


def main(argv):
  del argv
  f = flags.FLAGS
  tf.config.set_visible_devices([], "GPU")  # tf.data stays on the host
  parallel.start_processes(f.coordinator_address, f.num_processes, f.process_id)
  picture = neighbour_grid(f.workdir, f.queries, f.neighbours)
  if jax.process_index() == 0:
    write_png(f.out, picture)
    print(f.out)


if __name__ == "__main__":
  parallel.define_process_flags()
  flags.DEFINE_string("workdir", None, "A pretraining workdir (with an export or a checkpoint).")
  flags.DEFINE_integer("queries", 8, "How many test images to show, one a row.")
  flags.DEFINE_integer("neighbours", 8, "How many nearest training images to show per query.")
  flags.DEFINE_string("out", "neighbours.png", "Where to write the PNG.")
  flags.mark_flag_as_required("workdir")
  app.run(main, flags_parser=cli.quiet_flags)
