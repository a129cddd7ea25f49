"""What the pretext-task methods share: a classifier over one or more encoded parts of an
image, and its cross-entropy.

RotNet classifies each rotated image on its own (1 part); Jigsaw classifies the
concatenated features of 9 tiles (9 parts), relative position those of 2 patches. Each
part goes through the same backbone; an optional per-part head (Jigsaw's fc6) maps its
features before the concatenation; the classifier head maps the concatenation to classes.

Colorization and inpainting predict pixels instead: `EncoderDecoder` puts a decoder on the
backbone's last map.
"""
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from jax_ssl import config as config_lib, losses, methods, models
from jax_ssl.methods import common


class PartsClassifier(nn.Module):
  """[..., parts, S, S, C] images -> (per-part features [N * parts, F], logits [N, K]).

  The leading axes are flattened; every `parts` consecutive images are one example.
  """
  backbone: nn.Module
  head: nn.Module
  parts: int = 1
  part_head: Optional[nn.Module] = None

  def __call__(self, x, train: bool):
    images = x.reshape((-1,) + x.shape[-3:])
    features = self.backbone(images, train=train)
    per_part = features if self.part_head is None else self.part_head(features, train=train)
    joined = per_part.reshape(-1, self.parts * per_part.shape[-1])
    return features, self.head(joined, train=train)


class EncoderDecoder(nn.Module):
  """Images -> (pooled features [B, F], the decoder's per-pixel outputs [B, S, S, D])."""
  backbone: nn.Module
  decoder: nn.Module

  def __call__(self, x, train: bool):
    feature_map = self.backbone(x, train=train, pool=False)
    features = jnp.mean(feature_map.astype(jnp.float32), axis=(1, 2))
    return features, self.decoder(feature_map, train=train)


def create_encoder_decoder(c, widths, output_dim, output_size):
  """The backbone and an UpsamplingDecoder of `widths` to `output_dim` channels."""
  decoder = models.UpsamplingDecoder(tuple(widths), output_dim, output_size,
                                     dtype=models.DTYPES[c.model.dtype])
  return EncoderDecoder(models.create_backbone(c.model), decoder)


def check_widths(c, name):
  """config.<name>.decoder_widths are positive integers."""
  widths = tuple(c[name].decoder_widths)
  config_lib.require(all(isinstance(w, int) and w > 0 for w in widths),
                     f"config.{name}.decoder_widths", widths, "positive integers")


def create_model(c, section, num_classes, parts=1):
  """The backbone, `section.part_dim` (0: none) and a head with `section.head_hidden_dims`."""
  part_head = None
  if section.get("part_dim", 0):
    part_head = common.mlp_head(c, (), section.part_dim, last_bn=True)
  head = common.mlp_head(c, section.head_hidden_dims, num_classes)
  return PartsClassifier(models.create_backbone(c.model), head, parts, part_head)


def cross_entropy(logits, labels):
  """Mean softmax cross-entropy of integer labels, and the accuracy; float32."""
  logits = logits.astype(jnp.float32)
  log_probs = jax.nn.log_softmax(logits)
  value = -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))
  return value, jnp.mean(jnp.argmax(logits, axis=1) == labels)


def group_initialiser(group):
  """An init_model that builds the model on view group `group` as the loss sees it."""
  def init_model(run, rng, batch):
    return run.model.init(rng, batch[group], train=False)
  return init_model


def classify(params, state, run, images, labels, rng, example_features=None):
  """The pretext loss of `images` against `labels` and its LossResult.

  `example_features(features)` picks each example's [B, F] features for the online probe
  from the per-part features (default: none).
  """
  forward = common.Forward(run, params, state["batch_stats"], rng)
  features, logits = forward(images)
  value, accuracy = cross_entropy(logits, labels.reshape(-1))
  probe = None if example_features is None else example_features(features)
  return methods.LossResult(
      value, {"pretext_accuracy": accuracy, "embedding_std": losses.embedding_std(features)},
      forward.batch_stats, features=probe)


def check_head(c, name):
  """config.<name>.head_hidden_dims and part_dim (if the section has it) are usable."""
  section = c[name]
  hidden = tuple(section.head_hidden_dims)
  config_lib.require(all(isinstance(w, int) and w > 0 for w in hidden),
                     f"config.{name}.head_hidden_dims", hidden, "positive integers")
  if "part_dim" in section:
    config_lib.require(isinstance(section.part_dim, int) and section.part_dim >= 0,
                       f"config.{name}.part_dim", section.part_dim, "an integer >= 0 (0: none)")


def check_view(c, group, transform):
  """config.data.views holds `group`, one view (count=1) with the view transform
  `transform` (with or without its argument)."""
  view = c.data.views.get(group)
  ok = (view is not None and view.count == 1
        and view.transform.partition(":")[0] == transform)
  config_lib.require(ok, f"config.data.views.{group}", view and view.to_dict(),
                     f"one view (count=1) with transform='{transform}'")


def imagenet_recipe(c, num_epochs):
  """What the ImageNet recipes of the pretext tasks share: a ResNet-50 on TFDS
  'imagenet2012', batch 256, SGD with momentum 0.9 and weight decay 5e-4 (the papers'),
  lr 0.1 x batch/256 on a cosine after one warm-up epoch."""
  c.model.arch = "resnet50"
  c.data.source = "tfds:imagenet2012"
  c.data.test_split = "validation"
  c.train.update(batch_size=256, num_epochs=num_epochs, warmup_epochs=1)
  use_sgd(c, base_lr=0.1)
  c.eval.max_train_examples = 100_000


def use_sgd(c, base_lr):
  """SGD with momentum 0.9 and weight decay 5e-4, as the pretext papers train; the rate is
  base_lr x batch/256."""
  c.optim.update(name="sgd", base_lr=base_lr, momentum=0.9, weight_decay=5e-4)
