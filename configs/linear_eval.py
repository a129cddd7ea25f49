r"""Linear evaluation of a pretrained encoder, the standard protocol (SimCLR, MoCo).

  python main.py --config=configs/linear_eval.py --config.pretrained=/tmp/simclr_tiny \
      --workdir=/tmp/simclr_tiny_linear

The exported encoder is frozen (running BN statistics, no gradient) and a linear
classifier is trained on its features: random-resized crops (from
config.data.augment.labelled_crop_area_min of the area) and flips for training,
resize and centre crop for testing; SGD with Nesterov momentum 0.9, learning rate
0.1 x B / 256, cosine decay, no weight decay, 90 epochs (SimCLR, Chen et al. 2020,
appendix B.5: ImageNet, B = 4096). The features pass a BatchNorm without scale or offset
(a fixed affine map at test time, so the classifier stays linear; He et al. 2022). Reports
linear_top1 and linear_top5 on the test split in metrics.jsonl; with
--config.eval.baseline=True also the randomly initialised encoder's, as baseline_*.

The data and model default to the pretraining run's: fields left unset here are read
from <pretrained>/config.json and the export. Set any to override (transfer:
--config.data.source=tfds:cifar10 --config.data.image_size=32); a config.model field that
differs from the exported architecture is an error.

`linear_eval.py:mae` is MAE's protocol (He et al. 2022, appendix A.2; main_linprobe.py):
the same affine-free BatchNorm (eps 1e-6), LARS without weight decay at 0.1 x B / 256
with batch 16384, 10 warm-up epochs then a cosine over 90; features as the pretraining
config's model.features (MAE's default: the class token after the final norm;
--config.model.features=mean_patch for its --global_pool). MAE ViT-B/16: 68.0% top-1.

`linear_eval.py:fast` extracts features once without augmentation and trains on them
(config.eval.linear_* hyperparameters): the probe a pretraining run reports, in seconds.

Expected: ResNet-50 SimCLR, ImageNet, 1000 epochs: 69.3% top-1 (SimCLR paper, Table 6).
On a simclr_tiny workdir whose run reported linear_top1 0.920 (built-in digits, 2-core CPU,
about 8 minutes with the baseline): linear_top1 0.918 (random init 0.784); :fast 0.920
(random init 0.816). See README.md.
"""
from jax_ssl.config import labelled_task_config


def get_config(arg=None):
  if arg not in (None, "", "fast", "mae"):
    raise ValueError(f"config argument {arg!r} is unknown; expected nothing, ':fast' or "
                     "':mae'")
  c = labelled_task_config("linear_eval", base_lr=0.1, num_epochs=90)
  c.eval.linear_mode = "fast" if arg == "fast" else "standard"
  if arg == "mae":
    c.train.update(batch_size=16384, warmup_epochs=10)
    c.optim.update(name="lars", momentum=0.9, nesterov=False, weight_decay=0.0)
  return c
