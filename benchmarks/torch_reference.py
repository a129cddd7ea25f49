r"""The SimCLR training step written the way PyTorch users run it, for step_throughput.py.

  python benchmarks/torch_reference.py --model resnet50 --image_size 224 --batch 256 \
      --dtype bfloat16

The step is the one `step_throughput.py --method simclr` times in JAX, with the same
recipe (configs/simclr_r50.py at the benchmark's sizes): both views through the
encoder in one batch, so BatchNorm normalises them together; SimCLR v2's projection
head (feature_dim -> feature_dim -> feature_dim -> 128, Linear without bias, BN, ReLU;
the output BN has no offset); NT-Xent at temperature 0.1, the paper's mean over the
2N anchors, in float32; backward; LARS (momentum 0.9, trust coefficient 0.001, weight
decay 1e-6, biases and BN left out of decay and adaptation) at 0.3 x batch/256 with
warm-up and cosine decay. The ResNet is jax_ssl.torch_resnet's, plain torch with
torchvision's structure and parameter names (jax_ssl's export writes the same names); where
torchvision imports (it does not beside the CPU build of torch), torchvision's own
resnetXX replaces it at width 1 with the ImageNet stem (`--notorchvision` keeps the
plain one). Images of 64 pixels or fewer get the CIFAR stem (3x3 conv, no max-pool),
as in step_throughput.py.

PyTorch's usual speed settings: bfloat16 autocast (`--dtype`; weights and optimizer
state stay float32), channels_last and torch.compile of forward and loss (`--channels_last`,
`--compile`; both on by default when CUDA is available), cudnn.benchmark, foreach
optimizer arithmetic, and synthetic images resident on the device. It runs `--warmup`
steps, then times `--steps` steps between torch.cuda.synchronize() calls (plain
wall-clock on CPU).

The last line printed is one JSON object: images_per_sec (images, each giving two
views, per second), step_ms, peak_memory_gb (torch.cuda.max_memory_allocated; None on
CPU), device, torch_version, dtype, batch, model, image_size, and the settings used.
"""
import argparse
import json
import math
import time

import torch
from torch import nn
from torch.nn import functional as F

# The ResNet with torchvision's structure and names that jax_ssl.torch_model loads exports into.
from jax_ssl.torch_resnet import ARCHS, resnet

# configs/simclr_r50.py; tests/test_torch_reference.py checks that they still agree.
TEMPERATURE = 0.1
PROJ_DIM = 128
BASE_LR = 0.3          # x batch / BASE_BATCH_SIZE
BASE_BATCH_SIZE = 256
WEIGHT_DECAY = 1e-6
MOMENTUM = 0.9
TRUST_COEFFICIENT = 0.001
# The learning-rate schedule step_throughput.py gives the JAX step.
WARMUP_STEPS, TOTAL_STEPS = 10, 1000

TORCHVISION_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


# ------------------------------------------------------------------ ResNet ----
def backbone(arch, width=1.0, cifar_stem=False, allow_torchvision=True):
  """(encoder, feature_dim, 'torchvision' or 'plain'): torchvision's where it applies."""
  if allow_torchvision and width == 1 and not cifar_stem and arch in TORCHVISION_ARCHS:
    try:
      import torchvision  # noqa: PLC0415  (does not import beside the CPU build of torch)
    except Exception:
      torchvision = None
    if torchvision is not None:
      model = getattr(torchvision.models, arch)()
      feature_dim = model.fc.in_features
      model.fc = nn.Identity()
      return model, feature_dim, "torchvision"
  model = resnet(arch, width, cifar_stem)
  return model, model.feature_dim, "plain"


# -------------------------------------------------------------------- head ----
class ProjectionHead(nn.Module):
  """SimCLR v2's head, as jax_ssl.models.MLPHead: hidden Linear -> BN -> ReLU, then
  Linear -> BN without offset. Linear weights start from N(0, 0.01^2), without bias."""

  def __init__(self, in_dim, hidden_dims, out_dim):
    super().__init__()
    layers = []
    for width in hidden_dims:
      layers += [nn.Linear(in_dim, width, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
      in_dim = width
    layers += [nn.Linear(in_dim, out_dim, bias=False), nn.BatchNorm1d(out_dim)]
    layers[-1].bias.requires_grad_(False)  # stays 0: no centring on the output
    self.layers = nn.Sequential(*layers)
    for m in self.modules():
      if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.01)

  def forward(self, x):
    return self.layers(x)


class SimCLRModel(nn.Module):
  def __init__(self, encoder, projector):
    super().__init__()
    self.backbone = encoder
    self.projector = projector

  def forward(self, x):
    return self.projector(self.backbone(x))


def simclr_model(arch, width=1.0, cifar_stem=False, allow_torchvision=True):
  """(model, 'torchvision' or 'plain'); the head's hidden widths are the encoder's, as in
  step_throughput.py's configuration of jax_ssl."""
  encoder, feature_dim, kind = backbone(arch, width, cifar_stem, allow_torchvision)
  head = ProjectionHead(feature_dim, (feature_dim, feature_dim), PROJ_DIM)
  return SimCLRModel(encoder, head), kind


# -------------------------------------------------------------------- loss ----
def l2_normalize(x, eps=1e-12):
  return x * torch.rsqrt(torch.clamp((x * x).sum(dim=1, keepdim=True), min=eps))


def nt_xent(z_a, z_b, temperature=TEMPERATURE):
  """SimCLR's NT-Xent: mean cross-entropy over the 2N anchors, in float32.

  Row i of z_a and z_b are the two views of image i. Each anchor's positive is the
  other view of its image, its negatives the other 2N - 2 views; its similarity with
  itself is masked out. Autocast is off inside, so the similarities stay float32.
  """
  with torch.autocast(device_type=z_a.device.type, enabled=False):
    z = l2_normalize(torch.cat([z_a, z_b]).float())
    n = z_a.shape[0]
    logits = z @ z.T / temperature
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    rows = torch.arange(n, device=z.device)
    labels = torch.cat([rows + n, rows])
    return F.cross_entropy(logits, labels)


# -------------------------------------------------------------------- LARS ----
class LARS(torch.optim.Optimizer):
  """LARS as jax_ssl.optim builds it with optax.lars, step for step.

  For each parameter p with gradient g, in optax's order:
    u = g + weight_decay * p                         (only where p.ndim > 1)
    u = u * trust_coefficient * |p| / |u|            (only where p.ndim > 1; factor 1
                                                      when |p| or |u| is 0)
    m = momentum * m + lr * u                        (m starts at 0)
    p = p - m
  Biases and BatchNorm scales and offsets are the 1-D parameters: they take neither
  weight decay nor the trust ratio, as `jax_ssl.optim.decay_mask` decides.
  """

  def __init__(self, params, lr, weight_decay=WEIGHT_DECAY, momentum=MOMENTUM,
               trust_coefficient=TRUST_COEFFICIENT):
    defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                    trust_coefficient=trust_coefficient)
    super().__init__(params, defaults)

  @torch.no_grad()
  def step(self, closure=None):
    loss = None
    if closure is not None:
      with torch.enable_grad():
        loss = closure()
    for group in self.param_groups:
      params = [p for p in group["params"] if p.grad is not None]
      if not params:
        continue
      updates = [p.grad.clone() for p in params]
      adapted = [i for i, p in enumerate(params) if p.ndim > 1]
      if adapted:
        weights = [params[i] for i in adapted]
        adapted_updates = [updates[i] for i in adapted]
        if group["weight_decay"]:
          torch._foreach_add_(adapted_updates, weights, alpha=group["weight_decay"])
        weight_norms = torch.stack(torch._foreach_norm(weights))
        update_norms = torch.stack(torch._foreach_norm(adapted_updates))
        ratios = torch.where((weight_norms == 0) | (update_norms == 0),
                             torch.ones_like(weight_norms),
                             group["trust_coefficient"] * weight_norms / update_norms)
        for update, ratio in zip(adapted_updates, ratios.unbind()):
          update.mul_(ratio)
      buffers = []
      for p in params:
        state = self.state[p]
        if "momentum_buffer" not in state:
          state["momentum_buffer"] = torch.zeros_like(p)
        buffers.append(state["momentum_buffer"])
      torch._foreach_mul_(buffers, group["momentum"])
      torch._foreach_add_(buffers, updates, alpha=group["lr"])
      torch._foreach_sub_(params, buffers)
    return loss


def warmup_cosine(step, warmup_steps=WARMUP_STEPS, total_steps=TOTAL_STEPS):
  """The fraction of the peak rate at `step`: jax_ssl.optim.warmup_cosine's shape."""
  if step < warmup_steps:
    return step / warmup_steps
  progress = min((step - warmup_steps) / (total_steps - warmup_steps), 1.0)
  return 0.5 * (1.0 + math.cos(math.pi * progress))


# --------------------------------------------------------------- benchmark ----
def run(args):
  torch.manual_seed(0)
  device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
  on_cuda = device.type == "cuda"
  compile_step = on_cuda if args.compile is None else args.compile
  channels_last = on_cuda if args.channels_last is None else args.channels_last
  if on_cuda:
    torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest convolutions
  memory_format = torch.channels_last if channels_last else torch.contiguous_format
  cifar_stem = args.image_size <= 64  # as step_throughput.py configures jax_ssl

  model, kind = simclr_model(args.model, args.width, cifar_stem, not args.notorchvision)
  model = model.to(device, memory_format=memory_format).train()
  optimizer = LARS([p for p in model.parameters() if p.requires_grad],
                   lr=BASE_LR * args.batch / BASE_BATCH_SIZE)
  scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine)
  autocast_dtype = DTYPES[args.dtype]

  def forward_loss(view1, view2):
    with torch.autocast(device_type=device.type, dtype=autocast_dtype,
                        enabled=autocast_dtype != torch.float32):
      z = model(torch.cat([view1, view2]))
    z_a, z_b = z.chunk(2)
    return nt_xent(z_a, z_b)

  loss_fn = torch.compile(forward_loss) if compile_step else forward_loss

  def train_step(view1, view2):
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(view1, view2)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.detach()

  generator = torch.Generator(device=device).manual_seed(0)
  shape = (args.batch, 3, args.image_size, args.image_size)
  view1, view2 = (torch.rand(shape, generator=generator, device=device)
                  .contiguous(memory_format=memory_format) for _ in range(2))

  sync = torch.cuda.synchronize if on_cuda else (lambda: None)
  if on_cuda:
    torch.cuda.reset_peak_memory_stats(device)
  sync()
  start = time.perf_counter()
  first_step_s = None
  for i in range(args.warmup):
    loss = train_step(view1, view2)
    if i == 0:
      sync()
      first_step_s = time.perf_counter() - start
  sync()
  start = time.perf_counter()
  for _ in range(args.steps):
    loss = train_step(view1, view2)
  sync()
  step_s = (time.perf_counter() - start) / args.steps

  return {
      "method": "simclr", "model": args.model, "width": args.width,
      "image_size": args.image_size, "batch": args.batch, "dtype": args.dtype,
      "images_per_sec": args.batch / step_s, "step_ms": 1000 * step_s,
      "first_step_s": first_step_s,  # includes compilation under --compile
      "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if on_cuda else None,
      "loss": float(loss), "device": torch.cuda.get_device_name(device) if on_cuda else "cpu",
      "torch_version": torch.__version__, "resnet": kind, "compile": compile_step,
      "channels_last": channels_last, "steps": args.steps, "warmup": args.warmup,
      "float32_matmul_precision": torch.get_float32_matmul_precision(),
      "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
  }


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--model", default="resnet50", choices=ARCHS)
  p.add_argument("--width", type=float, default=1.0)
  p.add_argument("--image_size", type=int, default=224)
  p.add_argument("--batch", type=int, default=256, help="images; each gives two views")
  p.add_argument("--dtype", default="bfloat16", choices=tuple(DTYPES))
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--warmup", type=int, default=3)
  p.add_argument("--compile", dest="compile", action="store_true", default=None,
                 help="torch.compile forward and loss (default: on when CUDA is available)")
  p.add_argument("--nocompile", dest="compile", action="store_false")
  p.add_argument("--channels_last", dest="channels_last", action="store_true", default=None,
                 help="NHWC memory layout (default: on when CUDA is available; on CPU it "
                      "slows small convolutions down)")
  p.add_argument("--nochannels_last", dest="channels_last", action="store_false")
  p.add_argument("--notorchvision", action="store_true",
                 help="use the plain-torch ResNet even where torchvision's applies")
  p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
  args = p.parse_args(argv)
  if args.steps < 1 or args.warmup < 0:
    p.error(f"--steps={args.steps} and --warmup={args.warmup}: expected steps >= 1, "
            "warmup >= 0")
  return args


def main(argv=None):
  print(json.dumps(run(parse_args(argv))))


if __name__ == "__main__":
  main()
