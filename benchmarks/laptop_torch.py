r"""`simclr_tiny` against the same job written the PyTorch way, end to end on a laptop CPU.

  python benchmarks/laptop_torch.py --rounds 2 --record   # alternate the two jobs, 2 rounds
  python benchmarks/laptop_torch.py --only torch           # the PyTorch job alone

The PyTorch job is what a lightly user writes for simclr_tiny's recipe, every number read
from configs/simclr_tiny.py: a Dataset whose __getitem__ augments one image at a time with
tensor ops (random resized crop, the config's high-pass and lighting ops where it turns
them on, colour jitter in a random order with an HSV hue shift as torchvision's,
grayscale), a DataLoader with worker processes (`--workers`), the ResNet-10 with the CIFAR
stem at the config's width (jax_ssl.torch_resnet: torchvision's structure),
lightly's projection head (Linear-BN-ReLU-Linear), NT-Xent at the config's temperature over
both views, LARS as lightly writes it (momentum 0.9, trust coefficient 0.001, biases and BN
left out) with the config's warm-up and cosine decay, the config's number of steps on the
4,000 built-in training digits; then kNN (the config's k, temperature 0.07) and a linear
probe on frozen features of the 5,000 digits, as simclr_tiny's final evaluation does.
jax_ssl's job is `python main.py --config=configs/simclr_tiny.py` with its random-init
evaluation turned off (the PyTorch job has none).

Both run as fresh processes, alternating, so that they share the machine's state; the
wall time counts from process start to exit (imports, data, compilation, training,
evaluation, and for jax_ssl a checkpoint and the export). Training images/s: images (each
giving two views) per second over the steps after the first epoch. The last line is one
JSON object; --record appends it to benchmarks/results.jsonl.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

STARTED = time.perf_counter()
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "configs/simclr_tiny.py"
sys.path.insert(0, REPO)  # jax_ssl from this checkout, whether installed or not


def recipe():
  """simclr_tiny's numbers, which the PyTorch job follows."""
  from jax_ssl import optim  # noqa: PLC0415
  from jax_ssl.compare import load_config  # noqa: PLC0415
  c = load_config(os.path.join(REPO, CONFIG))
  a = c.data.augment
  return dict(
      batch=c.train.batch_size, steps=c.train.num_steps, warmup_steps=c.train.warmup_steps,
      size=c.data.image_size, source=c.data.source, arch=c.model.arch,
      width=c.model.width_multiplier, temperature=c.simclr.temperature,
      head=(*c.simclr.proj_hidden_dims, c.simclr.proj_dim),
      peak_lr=optim.scaled_learning_rate(c.optim, c.train.batch_size),
      weight_decay=c.optim.weight_decay, crop_min=a.crop_area_min, strength=a.color_strength,
      jitter=tuple(a.jitter), color_prob=a.color_prob, gray_prob=a.grayscale_prob,
      flip=a.flip, highpass_prob=a.highpass_prob, highpass_sigma=a.highpass_sigma,
      lighting_prob=a.lighting_prob, lighting_strength=a.lighting_strength,
      knn_k=c.eval.knn_k, probe_epochs=c.eval.linear_epochs)


# ---------------------------------------------------------- the torch job ----
def torch_job(r, workers):
  """Trains and evaluates the PyTorch job of recipe `r`; returns its figures."""
  import numpy as np  # noqa: PLC0415
  import torch  # noqa: PLC0415
  from torch import nn  # noqa: PLC0415
  from torch.nn import functional as F  # noqa: PLC0415

  from jax_ssl import torch_resnet  # noqa: PLC0415  (no JAX: plain torch)
  from jax_ssl.data import builtin  # noqa: PLC0415  (numpy only)

  torch.manual_seed(0)
  size, batch = r["size"], r["batch"]
  splits = {"builtin:mnist": builtin.mnist_splits,
            "builtin:colour_digits": builtin.colour_digits_splits}[r["source"]]()
  to_tensor = lambda images: torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float() / 255
  uniform = lambda low, high: torch.empty(()).uniform_(low, high).item()

  def random_resized_crop(image):
    _, h, w = image.shape
    for _ in range(10):
      area = h * w * uniform(r["crop_min"], 1.0)
      ratio = math.exp(uniform(math.log(3 / 4), math.log(4 / 3)))
      cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
      if 0 < cw <= w and 0 < ch <= h:
        top = torch.randint(0, h - ch + 1, ()).item()
        left = torch.randint(0, w - cw + 1, ()).item()
        break
    else:
      top, left, ch, cw = 0, 0, h, w
    crop = image[:, top:top + ch, left:left + cw][None]
    return F.interpolate(crop, (size, size), mode="bilinear", align_corners=False)[0]

  def gray(image):
    return (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None].expand(3, -1, -1)

  def hue_shift(image, shift):  # an HSV round trip, as torchvision's adjust_hue
    red, green, blue = image
    v = image.max(0).values
    delta = v - image.min(0).values
    s = torch.where(v > 0, delta / v.clamp_min(1e-8), torch.zeros_like(v))
    d = delta.clamp_min(1e-8)
    h = torch.where(v == red, (green - blue) / d,
                    torch.where(v == green, 2 + (blue - red) / d, 4 + (red - green) / d))
    h = ((h / 6) % 1 + shift) % 1
    sector = torch.floor(h * 6)
    f = h * 6 - sector
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    pick = lambda *c: torch.stack(c).gather(0, (sector.long() % 6)[None])[0]
    return torch.stack([pick(v, q, p, p, t, v), pick(t, v, v, q, p, p), pick(p, p, t, v, v, q)])

  def colour_jitter(image):
    b, c, s, h = (r["strength"] * x for x in r["jitter"])
    ops = [lambda x: x * uniform(1 - b, 1 + b),
           lambda x: (x - gray(x).mean()) * uniform(1 - c, 1 + c) + gray(x).mean(),
           lambda x: (x - gray(x)) * uniform(1 - s, 1 + s) + gray(x),
           lambda x: hue_shift(x, uniform(-h, h))]
    for index in torch.randperm(4).tolist():
      image = ops[index](image).clamp(0, 1)
    return image

  sigma = r["highpass_sigma"] * size
  radius = min(math.ceil(3 * sigma), size - 1)
  taps = torch.exp(-torch.arange(-radius, radius + 1.0) ** 2 / (2 * sigma ** 2))
  taps = (taps / taps.sum()).expand(3, 1, 1, -1)

  def highpass(image):  # the image less its Gaussian blur, around mid-grey
    blurred = F.pad(image[None], (radius,) * 4, mode="reflect")
    blurred = F.conv2d(F.conv2d(blurred, taps, groups=3), taps.transpose(2, 3), groups=3)[0]
    return (image - blurred + 0.5).clamp(0, 1)

  line = torch.linspace(-0.5, 0.5, size)

  def lighting(image):  # a linear colour ramp at a random angle
    angle = uniform(0, 2 * math.pi)
    ramp = line[None, :] * math.cos(angle) + line[:, None] * math.sin(angle)
    colour = torch.empty(3, 1, 1).uniform_(-1, 1)
    return (image + r["lighting_strength"] * ramp * colour).clamp(0, 1)

  def view(image):
    image = random_resized_crop(image)
    if r["flip"] and torch.rand(()) < 0.5:
      image = image.flip(2)
    if torch.rand(()) < r["highpass_prob"]:
      image = highpass(image)
    if torch.rand(()) < r["lighting_prob"]:
      image = lighting(image)
    if torch.rand(()) < r["color_prob"]:
      image = colour_jitter(image)
    if torch.rand(()) < r["gray_prob"]:
      image = gray(image).contiguous()
    return image

  class TwoViews(torch.utils.data.Dataset):
    def __init__(self, images):
      self.images = to_tensor(images)

    def __len__(self):
      return len(self.images)

    def __getitem__(self, i):
      return view(self.images[i]), view(self.images[i])

  loader = torch.utils.data.DataLoader(
      TwoViews(splits["train"][0]), batch_size=batch, shuffle=True, drop_last=True,
      num_workers=workers, persistent_workers=workers > 0)
  backbone = torch_resnet.resnet(r["arch"], r["width"], cifar_stem=True)
  dims = backbone(torch.zeros(2, 3, size, size)).shape[1], *r["head"]
  layers = []
  for fan_in, fan_out in zip(dims[:-2], dims[1:-1]):
    layers += [nn.Linear(fan_in, fan_out), nn.BatchNorm1d(fan_out), nn.ReLU()]
  model = nn.Sequential(backbone, *layers, nn.Linear(dims[-2], dims[-1]))

  def nt_xent(z):
    z = F.normalize(z, dim=1)
    logits = z @ z.T / r["temperature"]
    logits.fill_diagonal_(-1e9)
    n = len(z) // 2
    return F.cross_entropy(logits, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))

  optimizer = Lars([{"params": [p for p in model.parameters() if p.ndim > 1],
                     "weight_decay": r["weight_decay"]},
                    {"params": [p for p in model.parameters() if p.ndim <= 1],
                     "weight_decay": 0.0, "exclude": True}], lr=r["peak_lr"])
  total, warmup = r["steps"], r["warmup_steps"]
  lr_at = lambda step: r["peak_lr"] * (step / warmup if step < warmup else
                                       0.5 * (1 + math.cos(math.pi * step / total)))
  # images/s from the second epoch on, as for jax_ssl (from the second step in short runs)
  timed_from_step = len(loader) if total > len(loader) else 1
  phases = {"train_start_s": round(time.perf_counter() - STARTED, 1)}
  step, timed_from, timed_steps = 0, None, 0
  while step < total:
    for x1, x2 in loader:
      if step == timed_from_step:
        timed_from, timed_steps = time.perf_counter(), 0
      for group in optimizer.param_groups:
        group["lr"] = lr_at(step)
      loss = nt_xent(model(torch.cat([x1, x2])))
      optimizer.zero_grad(set_to_none=True)
      loss.backward()
      optimizer.step()
      step, timed_steps = step + 1, timed_steps + 1
      if step == total:
        break
  images_per_sec = timed_steps * batch / (time.perf_counter() - timed_from)
  phases["train_end_s"] = round(time.perf_counter() - STARTED, 1)
  return {"images_per_sec": images_per_sec, "loss": float(loss), **phases,
          **evaluate(backbone, splits, to_tensor, r["knn_k"], r["probe_epochs"])}


def evaluate(backbone, splits, to_tensor, knn_k, probe_epochs):
  """kNN (k neighbours, temperature 0.07, weighted votes) and a linear probe (epochs of Adam on
  standardised frozen features) on the centre 28-pixel views, as simclr_tiny evaluates."""
  import numpy as np  # noqa: PLC0415
  import torch  # noqa: PLC0415
  from torch.nn import functional as F  # noqa: PLC0415
  backbone.eval()
  with torch.no_grad():
    feats = {s: torch.cat([backbone(to_tensor(splits[s][0][i:i + 512]))
                           for i in range(0, len(splits[s][0]), 512)]) for s in splits}
  labels = {s: torch.from_numpy(np.array(splits[s][1])).long() for s in splits}
  train, test = F.normalize(feats["train"], dim=1), F.normalize(feats["test"], dim=1)
  sims, nearest = (test @ train.T).topk(knn_k, dim=1)
  votes = torch.zeros(len(test), 10).scatter_add_(
      1, labels["train"][nearest], (sims / 0.07).exp())
  knn = (votes.argmax(1) == labels["test"]).float().mean().item()
  mean, std = feats["train"].mean(0), feats["train"].std(0) + 1e-6
  x_train, x_test = (feats["train"] - mean) / std, (feats["test"] - mean) / std
  probe = torch.nn.Linear(x_train.shape[1], 10)
  optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2, weight_decay=1e-4)
  for _ in range(probe_epochs):
    for batch in torch.randperm(len(x_train)).split(256):
      loss = F.cross_entropy(probe(x_train[batch]), labels["train"][batch])
      optimizer.zero_grad()
      loss.backward()
      optimizer.step()
  linear = (probe(x_test).argmax(1) == labels["test"]).float().mean().item()
  return {"knn_top1": knn, "linear_top1": linear}


def Lars(groups, lr):  # noqa: N802  (the class is made here so that torch loads lazily)
  """LARS as lightly.utils.lars writes it: SGD with momentum 0.9 whose update of each
  weight is scaled by trust 0.001 * |w| / |g + wd w|; excluded groups are plain SGD."""
  import torch  # noqa: PLC0415

  class _Lars(torch.optim.Optimizer):
    @torch.no_grad()
    def step(self):
      for group in self.param_groups:
        for p in group["params"]:
          if p.grad is None:
            continue
          d_p = p.grad.add(p, alpha=group["weight_decay"])
          if not group.get("exclude", False):
            p_norm, g_norm = torch.norm(p), torch.norm(d_p)
            if p_norm > 0 and g_norm > 0:
              d_p = d_p.mul(0.001 * p_norm / (g_norm + 1e-8))
          state = self.state[p]
          buf = state.setdefault("momentum_buffer", torch.clone(d_p).detach())
          if buf is not d_p:
            buf.mul_(0.9).add_(d_p)
          p.add_(buf, alpha=-group["lr"])

  return _Lars(groups, {"lr": lr, "weight_decay": 0.0})


# -------------------------------------------------------- the comparison ----
def timed(command, marks=()):
  """Runs `command`; returns its wall seconds, its stdout, and the seconds at which the
  first line starting with each of `marks` appeared."""
  started = time.perf_counter()
  process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
  lines, seen = [], {}
  for line in process.stdout:
    lines.append(line)
    for mark in marks:
      if line.startswith(mark) and mark not in seen:
        seen[mark] = round(time.perf_counter() - started, 1)
  stderr = process.stderr.read()
  if process.wait() != 0:
    raise RuntimeError(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
  return time.perf_counter() - started, "".join(lines), seen


def run_torch(r, workers):
  seconds, out, _ = timed([sys.executable, __file__, "--only", "torch", "--workers",
                           str(workers), "--recipe", json.dumps(r)])
  return {"job": "pytorch", "seconds": round(seconds, 1), **json.loads(out.splitlines()[-1])}


JAX_PHASES = {"compiling the training step": "train_start_s", "step ": "first_log_s",
              "exporting the encoder": "train_end_s", "evaluating the encoder": "eval_start_s"}


def run_jax(r):
  with tempfile.TemporaryDirectory() as workdir:
    seconds, _, seen = timed([sys.executable, "main.py", f"--config={CONFIG}",
                              f"--workdir={workdir}", "--config.eval.baseline=False"],
                             marks=JAX_PHASES)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      records = [json.loads(line) for line in f]
  steps_per_epoch = 4000 // r["batch"]
  rates = [x["images_per_sec"] for x in records
           if "images_per_sec" in x and x["step"] > steps_per_epoch]
  final = {k: v for x in records for k, v in x.items() if k in ("linear_top1", "knn_top1")}
  return {"job": "jax_ssl", "seconds": round(seconds, 1),
          "images_per_sec": sum(rates) / len(rates), **final,
          **{JAX_PHASES[mark]: at for mark, at in seen.items()}}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--only", choices=("torch", "jax"), default=None)
  parser.add_argument("--workers", type=int, default=2, help="the DataLoader's processes")
  parser.add_argument("--recipe", default=None, help=argparse.SUPPRESS)
  parser.add_argument("--record", action="store_true", help="append to results.jsonl")
  args = parser.parse_args()
  if args.only == "torch" and args.recipe:
    print(json.dumps(torch_job(json.loads(args.recipe), args.workers)))
    return
  r = recipe()
  print(f"recipe of {CONFIG}: {json.dumps(r)}", flush=True)
  jobs = {"torch": lambda: run_torch(r, args.workers), "jax": lambda: run_jax(r)}
  order = [args.only] if args.only else ["torch", "jax"]
  rows = []
  for _ in range(args.rounds):
    for job in order:
      rows.append(jobs[job]())
      x = rows[-1]
      print(f"{x['job']:8} {x['seconds']:7.1f} s end to end  {x['images_per_sec']:6.1f} "
            f"training images/s  linear {x.get('linear_top1', float('nan')):.3f}  "
            f"kNN {x.get('knn_top1', float('nan')):.3f}  training from "
            f"{x.get('train_start_s', '?')} s to {x.get('train_end_s', '?')} s", flush=True)
  import jax  # noqa: PLC0415
  import torch  # noqa: PLC0415
  summary = {"benchmark": "laptop_torch", "config": CONFIG, "recipe": r, "rows": rows,
             "workers": args.workers, "torch_version": torch.__version__,
             "jax_version": jax.__version__, "cpu_count": os.cpu_count(),
             "date": time.strftime("%Y-%m-%d")}
  if args.record:
    with open(os.path.join(REPO, "benchmarks", "results.jsonl"), "a") as f:
      f.write(json.dumps(summary) + "\n")
  print(json.dumps(summary))


if __name__ == "__main__":
  main()
