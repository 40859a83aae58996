"""Counting one unit on the meta device with fvcore's conventions: no real tensor, no trace.

``analysis`` counts every unit once per (unit config, input shape). fvcore traces the unit with
TorchScript on real tensors, which costs a real forward pass (and oneDNN's set-up for every new
shape): about a quarter of a second per unit here, most of a search's time. This module gives the
same numbers from one pass on *meta* tensors (shapes only) under a ``TorchFunctionMode`` that sees
every torch function the unit calls at the level the Python code calls it (``F.conv2d``,
``F.batch_norm``, ``F.linear``, ``torch.matmul``, …; calls nested inside one are not seen), which is
the level fvcore's trace handles count at. Per function, fvcore's handles (``fvcore/nn/jit_handles.py``):

- convolution ``N × prod(weight) × prod(out spatial)`` (bias not counted; transposed: input spatial);
- ``linear``: ``prod(input) × out_features``; ``matmul``/``mm``: ``prod(A) × B[-1]``;
  ``bmm``: ``n·c·t·d``; ``addmm``: ``batch × in × out``;
- ``batch_norm``: in eval ``numel × (2 if affine else 1)``, in training ``numel × (5 | 4)``;
  ``layer_norm``, ``group_norm``, ``instance_norm``: ``numel × (5 if affine else 4)``;
- ``interpolate``: nearest ``1 ×`` output numel, bilinear ``4 ×`` (fvcore's ``upsample_*``),
  ``area`` ``1 ×`` input numel (it is ``adaptive_avg_pool2d``); ``adaptive_avg_pool2d``: input numel;
- ``scaled_dot_product_attention``: ``B·H·T·S·(d_k + d_v)``, kept apart (``attention``) as
  ``analysis`` reports it beside the MACs;
- every other function on the allow-list (``FREE``: elementwise maths, views, pooling, padding,
  concatenation, dropout, softmax) counts nothing, as in fvcore. A function not on either list
  raises ``UnsupportedOpError`` and the caller counts that unit with fvcore instead, so an unknown
  composite (``einsum``, ``multi_head_attention_forward``) is never silently counted as zero.

Speed: PyTorch's meta kernels for elementwise ops run Python reference code (about a millisecond
each), so the functions whose output is a fresh tensor of an easily computed shape (convolution,
norms, linear, activations, ``add``/``mul``, adaptive pooling) return a new meta tensor of that
shape without calling the kernel; in-place calls return their input, as the real function does.
Everything else runs its meta kernel. ``tests/test_analysis.py`` checks the counts against fvcore.

Below every pass on the meta device (this count, ``limits.meta_probe``'s size check, the traffic count),
``limits.MetaKernels`` memoises the ATen meta kernels by their inputs' shapes (``limits.run_meta``), and a
unit is built once for all of them (``limits.meta_unit``): building and the Python meta kernels were most of the time.

Peak memory (``peak_bytes``, see ``analysis``) needs tensor identity: on meta tensors a storage and
offset stand in for the data pointer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .limits import MetaKernels

__all__ = ["FREE", "MetaCount", "UnsupportedOpError", "count_on_meta"]

BYTES_FP32 = 4


class UnsupportedOpError(RuntimeError):
    """The unit calls a torch function this counter does not know; count it with fvcore."""


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any = None) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v),) * n


def _fresh(shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
    return torch.empty(tuple(shape), device="meta")


# ----------------------------------------------------------------------------- per-function rules
# Each rule: (args, kwargs) -> (output or None to run the function, macs, attention macs).

Rule = Callable[[tuple[Any, ...], dict[str, Any]], tuple[torch.Tensor | None, int, int]]


def _conv(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, int, int]:
    x, w = args[0], _arg(args, kwargs, 1, "weight")
    n = w.dim() - 2
    padding = _arg(args, kwargs, 4, "padding", 0)
    if isinstance(padding, str) or x.dim() != n + 2:
        return None, -1, 0  # run it; count from its output (below)
    s, p = _tuple(_arg(args, kwargs, 3, "stride", 1), n), _tuple(padding, n)
    d = _tuple(_arg(args, kwargs, 5, "dilation", 1), n)
    spatial = tuple((int(x.shape[2 + i]) + 2 * p[i] - d[i] * (int(w.shape[2 + i]) - 1) - 1) // s[i] + 1
                    for i in range(n))
    return _fresh((x.shape[0], w.shape[0], *spatial)), int(x.shape[0]) * math.prod(w.shape) * math.prod(spatial), 0


def _conv_transpose(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, int, int]:
    x, w = args[0], _arg(args, kwargs, 1, "weight")
    return None, int(x.shape[0]) * math.prod(w.shape) * math.prod(x.shape[2:]), 0


def _linear(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, int, int]:
    x, w = args[0], _arg(args, kwargs, 1, "weight")
    return _fresh((*x.shape[:-1], w.shape[0])), math.prod(x.shape) * int(w.shape[0]), 0


def _matmul(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, int, int]:
    a, b = args[0], _arg(args, kwargs, 1, "other", _arg(args, kwargs, 1, "mat2"))
    return None, math.prod(a.shape) * int(b.shape[-1]), 0


def _bmm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, int, int]:
    a, b = args[0], _arg(args, kwargs, 1, "mat2")
    n, c, t = (int(v) for v in a.shape)
    return None, n * c * t * int(b.shape[-1]), 0


def _addmm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, int, int]:
    a, b = _arg(args, kwargs, 1, "mat1"), _arg(args, kwargs, 2, "mat2")
    return None, int(a.shape[0]) * int(a.shape[1]) * int(b.shape[1]), 0


def _batch_norm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, int, int]:
    x = args[0]
    affine = _arg(args, kwargs, 3, "weight") is not None
    training = bool(_arg(args, kwargs, 5, "training", False))
    per = (5 if affine else 4) if training else (2 if affine else 1)
    return (None if training else _fresh(x.shape)), x.numel() * per, 0


def _norm(weight_at: int) -> Rule:
    def rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, int, int]:
        x = args[0]
        affine = _arg(args, kwargs, weight_at, "weight") is not None
        return _fresh(x.shape), x.numel() * (5 if affine else 4), 0

    return rule


def _adaptive_avg_pool(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, int, int]:
    x, size = args[0], _arg(args, kwargs, 1, "output_size")
    size = _tuple(size, 2)
    if any(s is None for s in size):
        return None, x.numel(), 0
    return _fresh((*x.shape[:-2], *size)), x.numel(), 0


def _interpolate(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, int, int]:
    mode = _arg(args, kwargs, 3, "mode", "nearest")
    if mode not in ("nearest", "bilinear", "area"):
        raise UnsupportedOpError(f"interpolate mode {mode!r}")
    return None, (-2 if mode == "area" else -1 if mode == "nearest" else -4), 0  # counted from the tensors


def _sdpa(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, int, int]:
    q, k, v = args[0], _arg(args, kwargs, 1, "key"), _arg(args, kwargs, 2, "value")
    batch = math.prod(int(d) for d in q.shape[:-2])
    return None, 0, batch * int(q.shape[-2]) * int(k.shape[-2]) * (int(q.shape[-1]) + int(v.shape[-1]))


def _same_shape(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, int, int]:
    x = args[0]
    if _arg(args, kwargs, 1, "inplace", False) is True:
        return x, 0, 0  # F.relu(x, inplace=True) returns x itself
    return _fresh(x.shape), 0, 0


def _broadcast(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor | None, int, int]:
    a, b = args[0], _arg(args, kwargs, 1, "other")
    if not isinstance(a, torch.Tensor) or "out" in kwargs:
        return None, 0, 0
    shape = torch.broadcast_shapes(a.shape, b.shape) if isinstance(b, torch.Tensor) else a.shape
    if isinstance(b, torch.Tensor) and b.dtype != a.dtype:
        return None, 0, 0
    return _fresh(shape), 0, 0


RULES: dict[Any, Rule] = {
    torch.conv1d: _conv, torch.conv2d: _conv, torch.conv3d: _conv,
    torch.conv_transpose1d: _conv_transpose, torch.conv_transpose2d: _conv_transpose,
    torch.conv_transpose3d: _conv_transpose,
    F.linear: _linear,
    torch.matmul: _matmul, torch.Tensor.matmul: _matmul, torch.Tensor.__matmul__: _matmul,
    torch.mm: _matmul, torch.Tensor.mm: _matmul,
    torch.bmm: _bmm, torch.Tensor.bmm: _bmm, torch.addmm: _addmm,
    F.batch_norm: _batch_norm, torch.batch_norm: _batch_norm,
    F.layer_norm: _norm(2), F.group_norm: _norm(2), F.instance_norm: _norm(3),
    F.adaptive_avg_pool2d: _adaptive_avg_pool,
    F.interpolate: _interpolate,
    F.scaled_dot_product_attention: _sdpa,
    F.relu: _same_shape, F.relu6: _same_shape, F.hardswish: _same_shape, F.hardsigmoid: _same_shape,
    F.silu: _same_shape, F.mish: _same_shape, F.gelu: _same_shape, torch.sigmoid: _same_shape,
    torch.tanh: _same_shape, torch.relu: _same_shape,
    torch.Tensor.add: _broadcast, torch.Tensor.mul: _broadcast, torch.Tensor.__add__: _broadcast,
    torch.Tensor.__mul__: _broadcast, torch.add: _broadcast, torch.mul: _broadcast,
}

#: functions fvcore counts nothing for (their trace holds no counted op): run on meta, counted as 0
FREE: frozenset[str] = frozenset({
    # views, shapes and bookkeeping
    "dim", "size", "numel", "__get__", "untyped_storage", "storage_offset", "reshape", "view", "permute",
    "transpose", "flatten", "unflatten",
    "squeeze", "unsqueeze", "contiguous", "expand", "expand_as", "chunk", "split", "unbind", "narrow",
    "__getitem__", "select", "t", "movedim", "flip", "roll", "repeat", "clone", "detach", "to", "type_as",
    "float", "view_as", "reshape_as", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
    # elementwise maths and reductions
    "add", "add_", "mul", "mul_", "sub", "sub_", "div", "div_", "__add__", "__radd__", "__iadd__", "__mul__",
    "__rmul__", "__imul__", "__sub__", "__rsub__", "__truediv__", "__rtruediv__", "__neg__", "neg",
    "sigmoid", "sigmoid_", "tanh", "relu", "relu_", "exp", "sqrt", "rsqrt", "pow", "__pow__", "clamp",
    "clamp_", "clamp_min", "abs", "mean", "sum", "amax", "max", "min", "softmax", "log_softmax", "where",
    "hardswish", "hardsigmoid", "relu6", "silu", "gelu", "mish", "elu", "leaky_relu", "hardtanh",
    "softplus", "dropout", "dropout2d", "alpha_dropout", "identity",
    # pooling, padding, joining
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_max_pool2d",
    "max_pool2d_with_indices", "_max_pool2d", "fn", "pad", "cat", "concat", "stack", "unfold", "fold",
})


def _name(func: Any) -> str:
    return str(getattr(func, "__name__", "") or "")


class MetaCount(TorchFunctionMode):
    """Counts fvcore's MACs (and attention MACs apart) of the torch functions run under it."""

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0
        self.attention = 0

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        rule = RULES.get(func)
        if rule is None:
            if _name(func) not in FREE:
                raise UnsupportedOpError(f"{getattr(func, '__module__', '')}.{_name(func) or func!r}")
            return func(*args, **kwargs)
        out, macs, attention = rule(args, kwargs)
        if out is None:
            out = func(*args, **kwargs)
        if macs < 0:  # a scale of the input or output numel (convolution with string padding, interpolate)
            if rule is _conv:
                w = _arg(args, kwargs, 1, "weight")
                macs = int(args[0].shape[0]) * math.prod(w.shape) * math.prod(out.shape[2:])
            else:
                macs = args[0].numel() if macs == -2 else -macs * out.numel()
        self.macs += macs
        self.attention += attention
        return out


def _key(t: torch.Tensor) -> tuple[int, int]:
    """A meta tensor's stand-in for its data pointer: (its storage, its offset)."""
    return int(t.untyped_storage()._cdata), int(t.storage_offset())


def count_on_meta(module: nn.Module, in_shape: tuple[int, ...]) -> tuple[tuple[int, ...], int, int, int]:
    """(output shape, MACs, attention MACs, peak bytes) of ``module`` (on meta, eval mode) at ``in_shape``.

    Peak bytes: as ``analysis`` defines them (every leaf module's input(s) and output plus the
    unit's input, distinct tensors counted once; then the unit's input and output), fp32.
    Raises ``UnsupportedOpError`` for a function outside ``RULES`` and ``FREE``.
    """
    x = torch.empty(in_shape, device="meta")
    unit_in = (_key(x), x.numel())
    live: list[int] = []

    def hook(_m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        tensors = {unit_in[0]: unit_in[1]}
        for t in [*args, out]:
            if isinstance(t, torch.Tensor):
                tensors[_key(t)] = t.numel()
        live.append(sum(tensors.values()))

    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    counter = MetaCount()
    try:
        with torch.no_grad(), MetaKernels(), counter:
            out = module(x)
    finally:
        for h in handles:
            h.remove()
    live.append(x.numel() + out.numel())
    return tuple(int(d) for d in out.shape), counter.macs, counter.attention, max(live) * BYTES_FP32
