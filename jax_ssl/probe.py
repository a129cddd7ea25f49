"""Linear classifiers on encoder features: the online probe that trains beside any method
during pretraining (on stop-gradient features, with its own optimizer), and the head that
linear evaluation and fine-tuning train.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jax_ssl import evaluate, parallel

ONLINE_MOMENTUM = 0.9


class LinearClassifier(nn.Module):
  """Features [B, F] -> logits [B, num_classes] float32.

  With `normalize`, a BatchNorm without scale or offset standardises the features first:
  at test time it is a fixed affine map that folds into the linear layer, so the classifier
  stays linear, and its optimizer no longer depends on the feature scale (MAE's probe).
  """
  num_classes: int
  normalize: bool = True

  @nn.compact
  def __call__(self, features, train: bool):
    x = features.astype(jnp.float32)
    if self.normalize:
      x = nn.BatchNorm(use_running_average=not train, use_scale=False, use_bias=False,
                       momentum=0.9, epsilon=1e-6)(x)
    return nn.Dense(self.num_classes, kernel_init=nn.initializers.zeros)(x)


def init_classifier(head, feature_dim):
  variables = head.init(jax.random.key(0), jnp.zeros((2, feature_dim)), train=False)
  return {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}


def topk_correct(logits, labels, ks=(1,)):
  """{k: number of rows whose label is among the k largest logits}."""
  order = jnp.argsort(-logits, axis=-1)
  hits = order == labels[:, None]
  return {k: jnp.sum(hits[:, :k]) for k in ks}


# ------------------------------------------------------------------ online ----
def online_optimizer(config, total_steps):
  return optax.sgd(optax.cosine_decay_schedule(config.eval.online_probe_lr, total_steps),
                   momentum=ONLINE_MOMENTUM, nesterov=True)


def add_online_probe(state, config, num_classes, feature_dim, total_steps, mesh):
  """state['probe'] = {params, batch_stats, opt_state}, when config.eval.online_probe."""
  if not config.eval.online_probe:
    return state
  head = LinearClassifier(num_classes)
  tx = online_optimizer(config, total_steps)

  def init():
    variables = init_classifier(head, feature_dim)
    return {**variables, "opt_state": tx.init(variables["params"])}

  return {**state, "probe": jax.jit(init, out_shardings=parallel.replicated(mesh))()}


def online_step(probe, features, labels, run):
  """One update of the online probe on stop-gradient features; labels reach nothing else."""
  head = LinearClassifier(probe["params"]["Dense_0"]["kernel"].shape[-1])
  tx = online_optimizer(run.config, run.total_steps)
  features = jax.lax.stop_gradient(features)

  def loss_of(params):
    logits, updates = head.apply({"params": params, "batch_stats": probe["batch_stats"]},
                                 features, train=True, mutable=["batch_stats"])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, (logits, updates["batch_stats"])

  (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_of, has_aux=True)(
      probe["params"])
  updates, opt_state = tx.update(grads, probe["opt_state"], probe["params"])
  new_probe = {"params": optax.apply_updates(probe["params"], updates),
               "batch_stats": batch_stats, "opt_state": opt_state}
  # Predictions made before this update: the probe has not trained on these views yet.
  accuracy = topk_correct(logits, labels)[1] / labels.shape[0]
  return new_probe, {"online_probe_loss": loss, "online_linear_train_top1": accuracy}


def online_test_top1(state, encoder_of, config, source, mesh):
  """Test-split top-1 of the online probe on the current encoder."""
  probe = state["probe"]
  head = LinearClassifier(probe["params"]["Dense_0"]["kernel"].shape[-1])
  classify = jax.jit(lambda variables, features: head.apply(variables, features, train=False))
  variables = {"params": probe["params"], "batch_stats": probe["batch_stats"]}
  encode = encoder_of(state)
  logits = evaluate.split_features(lambda images: classify(variables, encode(images)), config,
                                   source, "test", mesh)
  return {"online_linear_top1": evaluate.topk_accuracies(logits, ks=(1,))[1]}
