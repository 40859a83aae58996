"""Zero-cost proxies: score an untrained design from one mini-batch, in seconds on a CPU.

Each proxy is a pure function of (model, batch) -> float; the model is freshly initialised (seeded)
and left as it was found. With θ the weights of every convolution and linear layer and
L = CE(f(x), y) the loss of the batch:

- **synflow** (Tanaka et al., *Pruning neural networks without any data by iteratively conserving
  synaptic flow*, NeurIPS 2020): with every parameter replaced by its absolute value and an all-ones
  input 𝟙 (one image), R = 𝟙ᵀ f_|θ|(𝟙) and  S = Σ_θ |θ ⊙ ∂R/∂θ|.  Data-free. Computed in float64,
  with BatchNorm layers bypassed (identity), as the zero-cost-proxies reference does (Abdelfattah et
  al. 2021, ``bn=False``): otherwise BN would renormalise the all-ones signal away.
- **naswot** (Mellor et al., *Neural Architecture Search without Training*, ICML 2021): each input i
  gets a binary code c_i = [z > 0] over the pre-activations z of every rectifier (ReLU, ReLU6,
  hard-swish, swish, GELU, leaky ReLU; for ReLU this is exactly the paper's code). With
  K_ij = c_i·c_j + (1 − c_i)·(1 − c_j) = N_A − d_H(c_i, c_j),  S = log |det K|.  Train mode (batch BN).
- **grad_norm** (Abdelfattah et al., *Zero-Cost Proxies for Lightweight NAS*, ICLR 2021):
  S = Σ_layers ‖∂L/∂W_l‖₂.  Train mode.
- **snip** (Lee et al., *SNIP: Single-shot Network Pruning based on Connection Sensitivity*, ICLR
  2019; as a NAS proxy in Abdelfattah et al. 2021): S = Σ_θ |θ ⊙ ∂L/∂θ|.  Train mode.

BatchNorm runs in train mode (batch statistics) for naswot, grad-norm and snip, as in the reference
implementation; the batch is a real one (``digits`` by default), with its labels.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .analysis import analyze
from .build import build_model
from .design import DesignRef, load_design, retarget

__all__ = ["PROXIES", "compute_proxies", "grad_norm", "naswot", "snip", "synflow"]

_RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.GELU, nn.LeakyReLU)
_WEIGHTED = (nn.Conv2d, nn.Linear)


def _weighted_layers(model: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    return [m for m in model.modules() if isinstance(m, _WEIGHTED)]


def _identity_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x


def synflow(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    """S = Σ_θ |θ ⊙ ∂R/∂θ|,  R = 𝟙ᵀ f_|θ|(𝟙)  (float64, BN bypassed, one all-ones image); see the module docstring."""
    x, _y = batch
    net = copy.deepcopy(model)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.forward = _identity_forward.__get__(m)  # type: ignore[method-assign]
    net = net.double().train()
    with torch.no_grad():
        for p in net.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    net(ones).sum().backward()
    total = 0.0
    with torch.no_grad():
        for layer in _weighted_layers(net):
            if layer.weight.grad is not None:
                total += float((layer.weight * layer.weight.grad).abs().sum())
    return total


def naswot(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    """S = log|det K|,  K_ij = c_i·c_j + (1−c_i)·(1−c_j) over the rectifiers' binary codes; see the module docstring."""
    x, _y = batch
    n = x.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64)

    def hook(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:  # pre-hook: before an in-place activation
        c = (args[0].detach().reshape(n, -1) > 0).double().cpu()
        kernel.add_(c @ c.t()).add_((1 - c) @ (1 - c).t())

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, _RECTIFIERS)]
    was_training = model.training
    try:
        model.train()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not handles:
        raise ValueError("naswot needs rectifier activations (ReLU, hard-swish, …); this design has none")
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if float(sign) != 0 else float("-inf")


def _loss_grads(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> list[nn.Conv2d | nn.Linear]:
    x, y = batch
    was_training = model.training
    model.train()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    model.train(was_training)
    return _weighted_layers(model)


def grad_norm(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    """S = Σ_l ‖∂L/∂W_l‖₂ over conv and linear layers (train mode); see the module docstring."""
    layers = _loss_grads(copy.deepcopy(model), batch)
    with torch.no_grad():
        return float(sum(float(layer.weight.grad.norm()) for layer in layers if layer.weight.grad is not None))


def snip(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    """S = Σ_θ |θ ⊙ ∂L/∂θ| over conv and linear weights (train mode); see the module docstring."""
    layers = _loss_grads(copy.deepcopy(model), batch)
    with torch.no_grad():
        return float(sum(float((layer.weight * layer.weight.grad).abs().sum())
                         for layer in layers if layer.weight.grad is not None))


PROXIES: dict[str, Callable[[nn.Module, tuple[torch.Tensor, torch.Tensor]], float]] = {
    "synflow": synflow,
    "naswot": naswot,
    "grad_norm": grad_norm,
    "snip": snip,
}


def proxy_batch(dataset: str = "digits", input_size: int = 32, batch_size: int = 64, seed: int = 0,
                data: Any = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A seeded mini-batch of training images: (x, y, number of classes)."""
    from .data import load_dataset

    if not 2 <= batch_size <= 1024:
        raise ValueError(f"proxy batch size {batch_size} is out of range; use 2 to 1024")
    shapes = dataset == "shapes"  # the generated set: a small one is enough for one batch
    split = data if data is not None else load_dataset(dataset, input_size, 0, n_train=2000 if shapes else None,
                                                       n_val=100 if shapes else None)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(split.train_y), generator=g)[:batch_size]
    return split.train_x[idx], split.train_y[idx], split.num_classes


def compute_proxies(
    spec: DesignRef,
    input_size: int = 32,
    batch_size: int = 64,
    seed: int = 0,
    dataset: str = "digits",
    names: list[str] | None = None,
    data: Any = None,
) -> dict[str, Any]:
    """Every proxy (or ``names``) of ``spec`` built for the dataset at ``input_size``², seeded.

    Returns ``{proxy: score, ..., "seconds": {proxy: s}, "input_size", "batch_size", "seed",
    "dataset", "params"}`` (``params`` from ``analyze`` of the copy built for the data). The model
    is initialised with ``torch.manual_seed(seed)`` and every proxy sees the same fresh weights and
    the same batch.
    """
    names = list(names or PROXIES)
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise ValueError(f"unknown proxy {unknown[0]!r}; proxies: {', '.join(PROXIES)}")
    x, y, num_classes = proxy_batch(dataset, input_size, batch_size, seed, data)
    run_spec = retarget(load_design(spec), input_size=int(x.shape[-1]), num_classes=num_classes,
                        channels=int(x.shape[1]))
    torch.manual_seed(seed)
    model = build_model(run_spec)
    state = copy.deepcopy(model.state_dict())
    out: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in names:
        model.load_state_dict(state)  # the same fresh weights (and BN buffers) for every proxy
        t = time.perf_counter()
        value = PROXIES[name](model, (x, y))
        seconds[name] = round(time.perf_counter() - t, 3)
        out[name] = value if math.isfinite(value) else (float("inf") if value > 0 else float("-inf"))
    out["seconds"] = seconds
    out.update(input_size=int(x.shape[-1]), batch_size=int(x.shape[0]), seed=seed, dataset=dataset,
               params=analyze(run_spec).params, name=run_spec.name)
    return out


def kendall_tau_b(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> float:
    """Kendall's τ_b rank correlation with tie correction:

    τ_b = (n_c − n_d) / √((n₀ − n₁)(n₀ − n₂)),  n₀ = n(n−1)/2, n₁ / n₂ = pairs tied in a / in b,
    n_c / n_d = concordant / discordant pairs. NaN when either side is constant.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("kendall_tau_b needs two 1-D sequences of equal length")
    i, j = np.triu_indices(len(a), k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n0 = len(i)
    n1, n2 = int((da == 0).sum()), int((db == 0).sum())
    denom = math.sqrt((n0 - n1) * (n0 - n2))
    return float((da * db).sum() / denom) if denom > 0 else float("nan")
