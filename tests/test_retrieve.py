"""The nearest-neighbour picture."""
import numpy as np

from jax_ssl import retrieve


def test_neighbour_grid_shows_each_query_then_its_neighbours(pretrained_workdir, tmp_path):
  picture = retrieve.neighbour_grid(pretrained_workdir, queries=3, neighbours=4)
  side = 16 * 4 + 2 * retrieve.BORDER  # 16-pixel images upscaled to 64, framed
  gap = retrieve.GAP
  assert picture.shape == (3 * (side + gap) + gap, 5 * (side + gap) + 3 * gap, 3)
  for row in range(3):
    top = gap + row * (side + gap)
    query = picture[top:top + side, gap:gap + side]
    assert (query[0] == retrieve.WHITE).all()  # the query's frame
    for column in range(1, 5):
      left = gap + column * (side + gap) + 2 * gap
      frame = picture[top, left:left + side]
      assert (frame == retrieve.GREEN).all() or (frame == retrieve.RED).all()
  retrieve.write_png(str(tmp_path / "n.png"), picture)
  assert (tmp_path / "n.png").read_bytes().startswith(b"\x89PNG")
  assert np.ptp(picture) > 0
