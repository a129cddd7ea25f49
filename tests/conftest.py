"""Test set-up: 8 simulated CPU devices, so every multi-device path runs in CI."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402

# Must happen before any JAX backend starts.
jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_platforms", "cpu")

import tensorflow as tf  # noqa: E402

tf.config.set_visible_devices([], "GPU")
