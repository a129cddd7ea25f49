"""The memory bank (NPID, PIRL): its EMA write, its negative draw and its layout on the
devices. tests/test_contract.py runs a bank method through the step on 1 and 8 devices
and through a resumed run."""
import jax
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jax_ssl import config as config_lib, memory_bank, methods, parallel


def _sharded(array, mesh):
  return jax.device_put(array, NamedSharding(mesh, P(parallel.DATA_AXIS)))


def _unit_rows(seed, rows, dim):
  x = np.random.default_rng(seed).normal(size=(rows, dim))
  return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_an_ema_write_follows_its_formula_on_the_rows_of_the_batch_only():
  bank, features = _unit_rows(0, 32, 6), 3.0 * _unit_rows(1, 5, 6)
  index = np.array([30, 2, 17, 9, 4], np.int32)  # rows held by 5 of the 8 devices
  write = jax.jit(memory_bank.ema_write, static_argnums=3)
  written = np.asarray(write(_sharded(bank, parallel.make_mesh()), index, features, 0.5))
  expected = bank.astype(np.float64)
  for row, v in zip(index, features.astype(np.float64)):
    moved = 0.5 * expected[row] + 0.5 * v / np.linalg.norm(v)  # NPID: m <- norm(m m + (1-m) v)
    expected[row] = moved / np.linalg.norm(moved)
  np.testing.assert_allclose(written, expected, atol=1e-6)
  untouched = np.setdiff1d(np.arange(32), index)
  np.testing.assert_array_equal(written[untouched], bank[untouched])


def test_negatives_are_drawn_uniformly_from_the_examples_by_seed_and_step_on_any_mesh():
  bank = _unit_rows(2, 48, 4)  # 45 examples and 3 rows of padding

  @jax.jit
  def negatives(bank, step):
    return memory_bank.read(bank, memory_bank.draw_negatives(0, step, 45, 20_000))

  eight = negatives(_sharded(bank, parallel.make_mesh()), 3)
  one = negatives(_sharded(bank, parallel.make_mesh(jax.devices()[:1])), 3)
  np.testing.assert_array_equal(np.asarray(eight), np.asarray(one))
  drawn = np.asarray(memory_bank.draw_negatives(0, 3, 45, 20_000))
  np.testing.assert_array_equal(np.asarray(eight), bank[drawn])
  counts = np.bincount(drawn, minlength=48)
  assert counts[45:].sum() == 0 and abs(counts[:45] / 20_000 * 45 - 1).max() < 0.2
  assert np.any(np.asarray(memory_bank.draw_negatives(0, 4, 45, 20_000)) != drawn)
  assert np.any(np.asarray(memory_bank.draw_negatives(1, 3, 45, 20_000)) != drawn)


def _run(num_train, mesh):
  config = ml_collections.ConfigDict(dict(seed=0))
  return methods.Run(model=None, config=config, mesh=mesh, steps_per_epoch=1, total_steps=1,
                     num_train=num_train)


def test_the_bank_starts_as_unit_rows_the_same_on_1_and_8_devices():
  eight = memory_bank.bank_for(_run(45, parallel.make_mesh()), 4)
  one = memory_bank.bank_for(_run(45, parallel.make_mesh(jax.devices()[:1])), 4)
  assert eight.shape == (48, 4) and one.shape == (45, 4)  # padded to 6 rows a device
  np.testing.assert_array_equal(np.asarray(eight[:45]), np.asarray(one))
  np.testing.assert_allclose(np.linalg.norm(np.asarray(eight), axis=1), 1.0, rtol=1e-6)


def test_an_imagenet_bank_is_160k_rows_on_each_of_8_devices():
  config = config_lib.base_config("npid")
  mesh = parallel.make_mesh()
  run = methods.Run(model=None, config=config, mesh=mesh, steps_per_epoch=1, total_steps=1,
                    num_train=1_281_167)
  method = methods.get("npid")
  state = jax.eval_shape(lambda: method.init_state(run, None, None))
  sharding = NamedSharding(mesh, method.state_sharding["bank"])
  assert state["bank"].shape == (1_281_168, 128)
  assert sharding.shard_shape(state["bank"].shape) == (160_146, 128)  # 82 MB a device

