"""Short proxy-training runs: judge a design by how it learns, in minutes on a CPU.

``train(spec, TrainConfig(...))`` builds the design for the dataset's input size and classes,
trains it and evaluates it. The recipe:

- AdamW (β = 0.9, 0.999; decoupled weight decay λ on weights with ≥ 2 dimensions only, none on
  biases and normalisation parameters): θ ← θ − η_t (m̂ / (√v̂ + ε) + λ θ)  (Loshchilov & Hutter 2019);
- learning rate: linear warm-up over the first fraction w of the run, then cosine decay to 0.
  With progress p ∈ [0, 1] (step k of T: p = (k + ½) / T; a time budget: p = elapsed / budget)
      η(p) = η₀ · p / w                                   for p < w
      η(p) = η₀ · ½ (1 + cos(π (p − w) / (1 − w)))         otherwise;
- loss: cross-entropy with label smoothing ε: q = (1 − ε) · onehot(y) + ε / K,  L = −Σ_k q_k log softmax(z)_k;
- light augmentation as tensor ops on the batch: a random crop of the zero-padded image (pad S/8;
  zero is the mean after normalisation) and a horizontal flip where the labels allow it (not digits);
- evaluation in eval mode after re-estimating the BatchNorm statistics on 1,024 training images
  (:func:`precise_bn`): after a few hundred fast AdamW steps the running averages lag the weights
  so far that eval-mode accuracy would otherwise be near chance.

Everything random is seeded (Python, numpy, torch; one ``torch.Generator`` on the training device
draws the batch order and the augmentation), so the same seed gives the same losses on the same
machine and thread count. CPU by default, CUDA when present (channels-last memory and bfloat16
autocast there). The loop is lean: the loss stays on the device and is read back only every
``log_every`` steps, so a GPU never waits on the host; the cancel flag (``threading.Event``) is read
every step, so a run stops within one step and keeps, evaluates and saves what it learned.

With a :class:`~explorer.store.Store` the design as given, the copy that was trained (the
dataset's input and classes) with its analysis, the run, every curve point (as it is logged, each
in its own committed transaction) and the final metrics are stored, and the weights are saved
beside the database as an :mod:`explorer.checkpoint` that ``load_checkpoint`` reads with
``torch.load(weights_only=True)`` (no arbitrary objects are unpickled). Params and MACs come from
:func:`explorer.analysis.analyze` of the trained copy, like every other count in the explorer.
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .analysis import analyze
from .build import ExplorerNet, build_model
from .checkpoint import save_checkpoint
from .data import DataSplit, load_dataset
from .design import DesignRef, load_design, retarget
from .spec import ArchitectureSpec
from .store import StepRow, Store

__all__ = [
    "TrainConfig",
    "TrainResult",
    "augment_batch",
    "evaluate",
    "lr_at",
    "make_config",
    "pick_device",
    "precise_bn",
    "seed_everything",
    "train",
]


class TrainConfig(BaseModel):
    """Everything that decides a run (stored with it)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = "digits"
    steps: int | None = Field(100, ge=1, le=1_000_000, description="optimizer steps (an upper bound with minutes)")
    minutes: float | None = Field(None, gt=0, le=24 * 60, description="a wall-clock budget instead of steps")
    input_size: int = Field(32, ge=8, le=512)
    batch_size: int = Field(64, ge=2, le=4096)
    lr: float = Field(2e-3, gt=0, le=1.0)
    weight_decay: float = Field(0.05, ge=0, le=1.0)
    warmup: float = Field(0.05, ge=0, lt=1, description="fraction of the run spent warming up")
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    augment: bool = True
    seed: int = Field(0, ge=0, le=2**31 - 1)
    data_seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the data itself (shapes, folder split)")
    n_train: int | None = Field(None, ge=10, le=200_000)
    n_val: int | None = Field(None, ge=10, le=200_000)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    channels_last: bool | None = Field(None, description="None: on CUDA only")
    amp: bool | None = Field(None, description="bfloat16 autocast; None: on CUDA only")
    log_every: int = Field(10, ge=1, le=100_000)
    eval_every: int | None = Field(
        None, ge=0, description="None: 5 times per run (steps) or every 100 steps; 0: at the end")
    eval_batch: int = Field(256, ge=1, le=10_000)
    bn_images: int = Field(
        1024, ge=0, le=100_000, description="training images that re-estimate BN statistics before each evaluation")
    weights_dir: str | None = Field(None, description="where weights go without a store")

    @model_validator(mode="after")
    def _budget(self) -> TrainConfig:
        if self.minutes is None and self.steps is None:
            raise ValueError("give steps or minutes")
        return self

    def eval_interval(self) -> int:
        """Steps between validation passes (0: only at the end); a multiple of ``log_every``."""
        if self.eval_every is not None:
            every = self.eval_every
        elif self.steps is not None and self.minutes is None:
            every = max(1, self.steps // 5)
        else:
            every = 100
        if every == 0:
            return 0
        return max(self.log_every, (every // self.log_every) * self.log_every)


def make_config(**kwargs: Any) -> TrainConfig:
    """``TrainConfig(**kwargs)`` with one-line errors (``ValueError``) instead of pydantic's report."""
    if kwargs.get("minutes") is not None and "steps" not in kwargs:
        kwargs["steps"] = None
    try:
        return TrainConfig(**kwargs)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        value = f" {err['input']!r}" if where != "config" and isinstance(err.get("input"), (int, float, str)) else ""
        raise ValueError(f"training {where}{value}: {err['msg'].lower()}") from None


@dataclass
class TrainResult:
    """What a run gives back (``to_json`` is what ``explorer train --json`` prints)."""

    run_id: int | None
    status: str
    steps: int
    seconds: float
    train_seconds: float
    final_train_loss: float | None
    val_accuracy: float | None
    images_per_s: float
    dataset: str
    input_size: int
    num_classes: int
    device: str
    params: int  # of the trained copy, as deployed (``analyze(run_spec).params``)
    macs: int  # of the trained copy at the run's input size
    weights_path: str | None
    spec_yaml: str
    curve: list[StepRow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("spec_yaml")
        out.pop("curve")
        return out


# ----------------------------------------------------------------------------- pieces


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(choice: str = "auto") -> torch.device:
    """``auto``: CUDA when present, else CPU; asking for CUDA without one is a user error."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda: no CUDA GPU is visible to PyTorch here; use --device cpu")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def lr_at(progress: float, base: float, warmup: float) -> float:
    """η(p): linear warm-up to ``base`` over [0, w), then cosine decay to 0 at p = 1 (see the module docstring)."""
    p = min(max(progress, 0.0), 1.0)
    if warmup > 0 and p < warmup:
        return base * p / warmup
    return base * 0.5 * (1.0 + math.cos(math.pi * (p - warmup) / (1.0 - warmup)))


def augment_batch(x: torch.Tensor, pad: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop of the zero-padded batch, then a random horizontal flip (p = ½) per image.

    N×C×H×W -> N×C×H×W. Image i is shifted by (dy_i, dx_i) ∈ [−pad, pad]²:
    out_i[c, y, x] = pad(x_i)[c, y + pad + dy_i, x + pad + dx_i]; zeros enter at the borders.
    """
    n, _c, h, w = x.shape
    dev = x.device
    if pad > 0:
        xp = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=dev)
        dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=dev)
        rows = (dy + torch.arange(h, device=dev)).unsqueeze(2)  # N×H×1
        cols = (dx + torch.arange(w, device=dev)).unsqueeze(1)  # N×1×W
        batch = torch.arange(n, device=dev).view(n, 1, 1)
        x = xp.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # gather N×H×W×C, back to N×C×H×W
    if flip:
        mirror = torch.rand(n, generator=generator, device=dev) < 0.5
        x = torch.where(mirror.view(n, 1, 1, 1), x.flip(3), x)
    return x


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _autocast(device: torch.device, amp: bool) -> Any:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if amp else nullcontext()


@torch.no_grad()
def precise_bn(model: nn.Module, x: torch.Tensor, max_images: int = 1024, batch_size: int = 256,
               channels_last: bool = False, amp: bool = False) -> int:
    """Re-estimate every BatchNorm's running statistics for the current weights ("precise BN").

    A short run with AdamW moves the weights so fast that the exponential moving averages
    (momentum 0.1, an effective window of ~10 steps) trail far behind the batch statistics the
    network was trained with, and eval-mode accuracy collapses. Following Wu & Johnson, *Rethinking
    "Batch" in BatchNorm* (2021, PreciseBN), the statistics are reset and recomputed as plain
    averages over ``max_images`` training images (no augmentation) with the weights frozen:
    μ = (1/B) Σ_b μ_b, σ² = (1/B) Σ_b σ²_b. Only BatchNorm buffers change; training itself never
    reads them. Returns the number of BatchNorm layers updated.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or len(x) == 0 or max_images <= 0:
        return 0
    was_training = model.training
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average of the batches below
        m.train()
    device = next(model.parameters()).device
    n = min(len(x), max_images)
    step = min(batch_size, n)
    for i in range(0, n - step + 1, step):  # equal batches: the plain average of their statistics
        xb = x[i:i + step].to(device, non_blocking=True)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            model(xb)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)
    return len(norms)


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500,
             channels_last: bool = False, amp: bool = False) -> float:
    """Top-1 accuracy = (1/N) Σ_i [argmax_k f(x_i)_k = y_i], in eval mode; the model's mode is restored."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = torch.zeros((), dtype=torch.long, device=device)
    for i in range(0, len(y), batch_size):
        xb = x[i:i + batch_size].to(device, non_blocking=True)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            pred = model(xb).argmax(1)
        correct += (pred == y[i:i + batch_size].to(device, non_blocking=True)).sum()
    model.train(was_training)
    return float(correct.item()) / max(1, len(y))


class _Batches:
    """Shuffled mini-batches without replacement (a fresh permutation per epoch), drawn on ``device``."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> None:
        self.n, self.generator, self.device = n, generator, device
        self.batch_size = min(batch_size, n)
        self.perm = torch.empty(0, dtype=torch.long, device=device)
        self.pos = 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > len(self.perm):
            self.perm = torch.randperm(self.n, generator=self.generator, device=self.device)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx


# ----------------------------------------------------------------------------- the run


def train(
    spec: DesignRef,
    config: TrainConfig | None = None,
    on_step: Callable[[StepRow], None] | None = None,
    cancel: threading.Event | None = None,
    store: Store | None = None,
    data: DataSplit | None = None,
) -> TrainResult:
    """Train ``spec`` with ``config`` (see the module docstring) and return the result.

    ``on_step`` receives every curve point as it is logged (every ``log_every`` steps; points with a
    validation pass carry ``val_accuracy``). Setting ``cancel`` stops the run after the current step;
    the model is then evaluated and saved and the run's status is ``cancelled``. ``data`` skips
    loading ``config.dataset`` (benchmarks reuse one split).
    """
    config = config or TrainConfig()
    base_spec = load_design(spec)
    data = data if data is not None else load_dataset(config.dataset, config.input_size, config.data_seed,
                                                      n_train=config.n_train, n_val=config.n_val)
    run_spec = retarget(base_spec, input_size=data.input_size, num_classes=data.num_classes, channels=data.channels)
    device = pick_device(config.device)
    channels_last = device.type == "cuda" if config.channels_last is None else config.channels_last
    amp = device.type == "cuda" if config.amp is None else config.amp

    analysis = analyze(run_spec)  # before seeding: a cold count seeds torch itself
    params, macs = analysis.params, analysis.macs
    seed_everything(config.seed)
    model = build_model(run_spec).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # accepted, not in the stub

    run_id: int | None = None
    if store is not None:
        design_id = store.save_design(base_spec)  # the design as given: what History reloads
        size = f"{data.input_size}×{data.input_size}"
        trained_id = store.save_design(run_spec, f"{run_spec.name} ({size}, {data.num_classes} classes)")
        store.save_analysis(trained_id, analysis)  # the trained copy's counts, under its own id
        stored_config = config.model_dump() | {"device": str(device), "input_size": data.input_size,
                                               "num_classes": data.num_classes, "data": data.describe(),
                                               "channels_last": channels_last, "amp": amp,
                                               "trained_design_id": trained_id}
        run_id = store.start_run(design_id, config.dataset, stored_config)

    try:
        return _run_loop(model, run_spec, data, config, device, channels_last, amp, params, macs, run_id,
                         on_step, cancel, store)
    except BaseException as exc:
        if store is not None and run_id is not None:
            with contextlib.suppress(Exception):  # the original error matters more
                store.finish_run(run_id, "failed", {"steps": 0}, error=f"{type(exc).__name__}: {exc}"[:500])
        raise


def _run_loop(model: ExplorerNet, run_spec: ArchitectureSpec, data: DataSplit, config: TrainConfig,
              device: torch.device, channels_last: bool, amp: bool, params: int, macs: int,
              run_id: int | None, on_step: Callable[[StepRow], None] | None, cancel: threading.Event | None,
              store: Store | None) -> TrainResult:
    train_x = data.train_x.to(device)
    train_y = data.train_y.to(device)
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)
    batches = _Batches(len(train_y), config.batch_size, generator, device)
    pad = max(1, data.input_size // 8) if config.augment else 0
    flip = config.augment and data.flip_ok
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.999),
                                  foreach=True)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    total_steps = config.steps
    budget = config.minutes * 60.0 if config.minutes is not None else None
    eval_every = config.eval_interval()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    curve: list[StepRow] = []
    loss_sum = torch.zeros((), device=device)
    loss_count = 0
    status = "finished"
    step = 0
    eval_seconds = 0.0
    model.train()
    start = time.perf_counter()

    def flush(final: bool) -> None:
        nonlocal loss_sum, loss_count, eval_seconds
        point = StepRow(step=step, lr=lr, seconds=0.0)
        if loss_count:
            mean = float((loss_sum / loss_count).item())  # the only host sync of the loop
            if not math.isfinite(mean):
                raise ValueError(f"training diverged at step {step} (loss {mean}); lower the learning rate")
            point.train_loss = mean
            loss_sum = torch.zeros((), device=device)
            loss_count = 0
        if final or (eval_every and step % eval_every == 0):
            t = time.perf_counter()
            precise_bn(model, data.train_x, config.bn_images, config.eval_batch, channels_last, amp)
            point.val_accuracy = evaluate(model, data.val_x, data.val_y, config.eval_batch, channels_last, amp)
            eval_seconds += time.perf_counter() - t
        point.seconds = time.perf_counter() - start
        if point.train_loss is None and point.val_accuracy is None:
            return
        curve.append(point)
        if store is not None and run_id is not None:
            store.log_steps(run_id, [point])
        if on_step is not None:
            on_step(point)

    lr = lr_at(0.0, config.lr, config.warmup)
    while True:
        if total_steps is not None and step >= total_steps:
            break
        elapsed = time.perf_counter() - start - eval_seconds
        if budget is not None and elapsed >= budget:
            break
        if cancel is not None and cancel.is_set():
            status = "cancelled"
            break
        if budget is not None:
            progress = elapsed / budget
            if total_steps is not None:
                progress = max(progress, (step + 0.5) / total_steps)
        else:
            progress = (step + 0.5) / total_steps  # type: ignore[operator]
        lr = lr_at(progress, config.lr, config.warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        try:
            idx = batches.next()
            x, y = train_x[idx], train_y[idx]
            if config.augment:
                x = augment_batch(x, pad, flip, generator)
            x = x.contiguous(memory_format=memory_format)
            with _autocast(device, amp):
                loss = criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        except KeyboardInterrupt:  # Ctrl-C: keep what was learned, like a cancel
            status = "cancelled"
            break
        loss_sum += loss.detach().float()
        loss_count += 1
        step += 1
        if step % config.log_every == 0 and step != total_steps:
            flush(final=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_seconds = time.perf_counter() - start - eval_seconds
    flush(final=True)
    seconds = time.perf_counter() - start

    losses = [p.train_loss for p in curve if p.train_loss is not None]
    val = next((p.val_accuracy for p in reversed(curve) if p.val_accuracy is not None), None)
    images_per_s = step * batches.batch_size / train_seconds if train_seconds > 0 and step else 0.0
    weights_path: Path | None = None
    if store is not None and run_id is not None:
        weights_path = store.path.parent / f"{store.path.stem}-weights" / f"run-{run_id}.pt"
    elif config.weights_dir:
        weights_path = Path(config.weights_dir) / f"{run_spec.name}-seed{config.seed}.pt"
    if weights_path is not None:
        save_checkpoint(weights_path, run_spec, model)
    result = TrainResult(
        run_id=run_id, status=status, steps=step, seconds=round(seconds, 3), train_seconds=round(train_seconds, 3),
        final_train_loss=losses[-1] if losses else None, val_accuracy=val, images_per_s=round(images_per_s, 1),
        dataset=config.dataset, input_size=data.input_size, num_classes=data.num_classes, device=str(device),
        params=params, macs=macs, weights_path=str(weights_path) if weights_path else None,
        spec_yaml=run_spec.to_yaml(), curve=curve,
    )
    if store is not None and run_id is not None:
        store.finish_run(run_id, status, result.to_json(), weights_path)
    return result
