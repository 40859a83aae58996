"""Unit shapes and size limits, on the builder side, before any real tensor is allocated.

Every unit is built on PyTorch's ``meta`` device (shapes and dtypes, no storage) and run on a
meta tensor, which gives exact parameter counts and output shapes for free. While it runs, a
dispatch mode sees every aten op and counts the work analytically (``WorkCounter``): the
multiply-accumulates of convolutions, matrix products and attention, the values every op writes,
and the largest tensor any op produces inside the unit (an expansion, an attention matrix), not
only its output. A spec whose parameters, channels, tensors or work exceed the limits below is
refused with a message that names the unit and says how to shrink it, before any real tensor
exists; so is one whose shapes do not fit (a stride that runs out of pixels, parallel columns
that disagree). ``channels_before`` answers "how many channels flow in here"
for the editor and the mutations, from the same walk.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any, NamedTuple

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

from .build import build_unit, reparameterize
from .spec import ArchitectureSpec, SpecError, Unit, UnitAddress, clip, config_from_json, expand_units

__all__ = [
    "MAX_ACTIVATION_ELEMENTS",
    "MAX_CHANNELS",
    "MAX_DESIGN_MACS",
    "MAX_DESIGN_OPS",
    "MAX_DESIGN_VALUES",
    "MAX_PARAMS",
    "MetaKernels",
    "Probe",
    "UnitShape",
    "WorkCounter",
    "channels_before",
    "check_size",
    "meta_probe",
    "meta_unit",
    "run_meta",
]

MAX_PARAMS = 50_000_000
MAX_ACTIVATION_ELEMENTS = 1 << 27  # 128 M floats = 512 MiB for any one tensor at batch 1, inside a unit or out of it
MAX_CHANNELS = 4096
# The presets need 0.06 to 1.0 GMACs and write 4 to 50 M values at their own input sizes, and
# all fit both bounds at 512² (at 1024², the largest input, MobileViT-XS and MobileOne-S1 do not).
# A design at either bound takes about 2 s (MACs) or 5 s (values) to analyse on 2 busy cores:
# analysis runs every unit on real tensors three times, about 10 ns per value written.
MAX_DESIGN_MACS = 20_000_000_000  # multiply-accumulates of one image through the whole design
MAX_DESIGN_VALUES = 500_000_000  # values written by all ops of one pass, views left out (the elementwise work)
# Analysis traces each distinct unit (config and input shape) once, at some 3 to 15 ms per aten op
# on 2 busy cores whatever the op's size (3,450 ops took 28 s there); the presets run 130 to 560.
MAX_DESIGN_OPS = 2000  # aten ops of the design's distinct units (a repeated identical unit counts once)


class UnitShape(NamedTuple):
    """One unit of the meta-device walk: N×C×H×W in, out (the head: N×classes), parameters (as built),
    and its multiply-accumulates as ``WorkCounter`` counts them."""

    unit: Unit
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    params: int
    macs: int = 0


def _numel(shape: Any) -> int:
    return math.prod(int(d) for d in shape)


# ----------------------------------------------------------------------------- meta kernels, memoised


class _NoKeyError(Exception):
    """An argument the kernel memo cannot key on (a real tensor, an unhashable value)."""


_PLAIN = (bool, int, float, str, torch.dtype, torch.device, torch.layout, torch.memory_format)


def _meta_key(value: Any) -> Any:
    """What a meta kernel's output can depend on: tensors by (shape, strides, dtype), the rest by type and value."""
    if isinstance(value, torch.Tensor):
        if value.device.type != "meta":
            raise _NoKeyError
        return ("T", tuple(value.shape), value.stride(), value.dtype)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_meta_key(v) for v in value))
    if value is None or isinstance(value, _PLAIN):
        return (type(value).__name__, value)
    raise _NoKeyError


def _storages(value: Any) -> set[int]:
    if isinstance(value, torch.Tensor):
        return {int(value.untyped_storage()._cdata)}
    if isinstance(value, (list, tuple)):
        return set().union(*(_storages(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return _storages(list(value.values()))
    return set()


def _describe(out: Any) -> Any:
    """The output's metadata (shapes, strides, dtypes), or ``None`` unless it is tensors only."""
    if isinstance(out, torch.Tensor):
        return ("T", tuple(out.shape), out.stride(), out.dtype)
    if isinstance(out, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in out):
        return (type(out).__name__, tuple(_describe(t) for t in out))
    return None


def _rebuild(meta: Any) -> Any:
    if meta[0] == "T":
        return torch.empty_strided(meta[1], meta[2], dtype=meta[3], device="meta")
    parts = [_rebuild(m) for m in meta[1]]
    return parts if meta[0] == "list" else tuple(parts)


_SELF = ("self",)  # an in-place op that left its first argument's shape as it was: its output is that argument
_KERNELS: dict[Any, Any] = {}  # (ATen op, argument metadata) -> output metadata | _SELF | None (always run it)
_MAX_KERNELS = 1 << 16


def run_meta(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``func(*args, **kwargs)`` for an ATen op on meta tensors, its output's metadata memoised by the inputs'.

    PyTorch's meta kernels for norms, initialisers and elementwise ops run Python reference code
    (about a millisecond each), yet on meta tensors the output is a function of the inputs' shapes,
    strides and dtypes and the other arguments. The first call of an (op, metadata) runs the kernel and
    records what it gave: fresh tensors (rebuilt from their shapes, strides and dtypes next time), its
    first argument unchanged in shape (an in-place op: returned as is), or anything else (an alias of an
    input, a non-tensor, an op that writes an ``out=`` argument or reshapes in place: always run). Views
    and calls with a real tensor among the arguments always run. The output is the kernel's own, shape for
    shape, and fresh tensors stay fresh (the peak count and the traffic count tell tensors apart).
    """
    if func.is_view:
        return func(*args, **kwargs)
    try:
        key = (func, _meta_key(args), _meta_key(tuple(sorted(kwargs.items()))))
    except _NoKeyError:
        return func(*args, **kwargs)
    known = _KERNELS.get(key, False)
    if known is None:
        return func(*args, **kwargs)
    if known is _SELF:
        return args[0]
    if known is not False:
        return _rebuild(known)
    out = func(*args, **kwargs)
    if len(_KERNELS) >= _MAX_KERNELS:
        _KERNELS.clear()
    if args and out is args[0] and isinstance(out, torch.Tensor):
        same = (tuple(out.shape), out.stride(), out.dtype) == key[1][1][0][1:]
        _KERNELS[key] = _SELF if same else None
    elif func._schema.is_mutable or _storages(out) & _storages((args, kwargs)):
        _KERNELS[key] = None
    else:
        _KERNELS[key] = _describe(out)
    return out


class MetaKernels(TorchDispatchMode):
    """Every ATen op under it goes through ``run_meta`` (building a unit on meta, counting it)."""

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        return run_meta(func, args, kwargs or {})


_BUILT = threading.local()  # per thread: a forward hook one pass adds must not fire in another thread's pass
_KEEP_BUILT = 16


def meta_unit(config_json: str, in_channels: int, num_classes: int, *, deployed: bool) -> nn.Module:
    """One unit built on the meta device, as trained (``deployed=False``) or folded, in eval mode (``deployed``).

    The size check, the count and the traffic count each need the unit: it is built once for them (the
    last few units per thread are kept; folding happens in place, so an unfolded unit asked for after it
    was folded is built again). Callers must leave the module as they found it (hooks removed).
    """
    kept: OrderedDict[tuple[str, int, int], tuple[nn.Module, bool]] = _BUILT.__dict__.setdefault("units", OrderedDict())
    key = (config_json, in_channels, num_classes)
    hit = kept.get(key)
    if hit is not None and (deployed or not hit[1]):
        module, folded = hit
        kept.move_to_end(key)
    else:
        with torch.device("meta"), MetaKernels():
            module = build_unit(config_from_json(config_json), in_channels, num_classes)
        folded = False
    if deployed and not folded:
        with torch.device("meta"), MetaKernels():
            reparameterize(module)
        folded = True
    kept[key] = (module, folded)
    while len(kept) > _KEEP_BUILT:
        kept.popitem(last=False)
    return module


class WorkCounter(TorchDispatchMode):
    """Counts the work of the aten ops run under it (on meta tensors: shapes only, nothing computed).

    ``macs`` (one per multiply-accumulate, fvcore's convention; elementwise ops count none):

    - convolution: ``out_numel × C_in/g × k_h × k_w`` (weight ``C_out × C_in/g × k_h × k_w``;
      transposed: ``in_numel ×`` the same weight product)
    - ``mm``/``addmm``/``bmm``/``baddbmm``: ``out_numel × K`` (``A: [B ×] M × K``)
    - fused attention (``_scaled_dot_product_*``): ``B·H·T·S·(d_k + d_v)``, and its ``B·H·T·S``
      attention matrix is counted as a tensor (the unfused path materialises it)

    ``values``: elements of every tensor every op produced, views left out (the elementwise
    work, and the bytes written / 4); ``largest``: the largest of those tensors, with its shape and op;
    ``ops``: how many aten ops ran (what tracing the unit for analysis costs).
    """

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0
        self.macs = 0
        self.values = 0
        self.largest = 0
        self.largest_shape: tuple[int, ...] = ()
        self.largest_op = ""

    def _tensor(self, shape: tuple[int, ...], op: str) -> None:
        n = _numel(shape)
        self.values += n
        if n > self.largest:
            self.largest, self.largest_shape, self.largest_op = n, shape, op

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = run_meta(func, args, kwargs or {})
        self.ops += 1
        op = func.overloadpacket.__name__
        first = out[0] if isinstance(out, (tuple, list)) and out else out
        if not func.is_view:  # a view (reshape, transpose, ...) writes nothing
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    self._tensor(tuple(t.shape), op)
        if op == "convolution":
            data, weight, transposed = args[0], args[1], args[6]
            self.macs += (data.numel() if transposed else first.numel()) * _numel(weight.shape[1:])
        elif op in ("mm", "bmm"):
            self.macs += first.numel() * int(args[0].shape[-1])
        elif op in ("addmm", "baddbmm"):
            self.macs += first.numel() * int(args[1].shape[-1])
        elif op.startswith("_scaled_dot_product"):
            q, k, v = args[0], args[1], args[2]
            scores = (*q.shape[:-1], int(k.shape[-2]))  # B × H × T × S
            self.macs += _numel(scores) * (int(q.shape[-1]) + int(v.shape[-1]))
            self._tensor(scores, op)
        return out


class Probe(NamedTuple):
    """What the meta-device run of one unit tells (see ``WorkCounter``)."""

    out_shape: tuple[int, ...]
    params: int
    macs: int
    values: int
    largest: int
    largest_shape: tuple[int, ...]
    largest_op: str
    ops: int


@lru_cache(maxsize=4096)
def meta_probe(config_json: str, in_shape: tuple[int, ...], num_classes: int) -> Probe:
    """Output shape, parameter count and work of one unit, computed on the meta device.

    The unit runs in eval mode, as ``analysis`` counts it: shapes and parameters are the same in
    both modes, and train-mode BatchNorm would refuse the batch of one at a 1×1 map.
    Re-parameterisable blocks are counted unfolded (their training form, the larger one).
    """
    counter = WorkCounter()
    module = meta_unit(config_json, in_shape[1], num_classes, deployed=False).eval()
    with torch.device("meta"):
        x = torch.empty(in_shape)
        with torch.no_grad(), counter:
            out = module(x)
    params = sum(p.numel() for p in module.parameters())
    return Probe(tuple(out.shape), params, counter.macs, counter.values, counter.largest,
                 counter.largest_shape, counter.largest_op, counter.ops)


def _by(shape: tuple[int, ...]) -> str:
    """``(1, 64, 56, 56)`` -> ``64×56×56`` (the batch of one left out)."""
    return "×".join(str(d) for d in (shape[1:] if len(shape) > 1 else shape))


def check_size(spec: ArchitectureSpec) -> list[UnitShape]:
    """Walk the units on the meta device; raise ``SpecError`` past a limit or where shapes do not fit.

    Limits, checked unit by unit in execution order (the message names the unit that passes one):
    parameters in all ≤ ``MAX_PARAMS``; channels ≤ ``MAX_CHANNELS``; every tensor an op
    produces ≤ ``MAX_ACTIVATION_ELEMENTS`` values; multiply-accumulates in all ≤
    ``MAX_DESIGN_MACS``; values written in all ≤ ``MAX_DESIGN_VALUES``; aten ops of the distinct
    units ≤ ``MAX_DESIGN_OPS``.
    Returns every unit's ``UnitShape`` in execution order.
    """
    shape: tuple[int, ...] = (1, spec.input.channels, *spec.input.hw)
    total = macs = values = ops = 0
    seen: set[tuple[str, tuple[int, ...]]] = set()
    rows = []
    for unit in expand_units(spec):
        key = unit.config.model_dump_json()
        try:
            probe = meta_probe(key, shape, spec.num_classes)
        except (ValueError, RuntimeError, IndexError) as exc:
            reason = clip(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 300)
            if len(shape) == 4 and min(shape[-2:]) <= 2:
                reason = (f"the input here is only {shape[-2]}×{shape[-1]}, too small for this block; "
                          "remove a stride-2 block earlier or use a larger input")
            raise SpecError(f"{unit.place}: {reason}") from None
        out = probe.out_shape
        total += probe.params
        if total > MAX_PARAMS:
            raise SpecError(
                f"{unit.place}: the design passes {MAX_PARAMS // 1_000_000} M parameters here "
                f"({total / 1e6:.1f} M so far); make stages narrower or shallower"
            )
        if not unit.address.is_head and out[1] > MAX_CHANNELS:
            raise SpecError(f"{unit.place}: {out[1]} channels exceed {MAX_CHANNELS}; use fewer (concat adds widths)")
        if probe.largest > MAX_ACTIVATION_ELEMENTS:
            limit = f"{probe.largest / 1e6:.0f} M values (limit {MAX_ACTIVATION_ELEMENTS // 1_000_000} M)"
            if probe.largest_shape == out:
                raise SpecError(
                    f"{unit.place}: its output {_by(out)} has {limit}; downsample earlier or use fewer channels")
            attention = probe.largest_op in ("bmm", "baddbmm") or "dot_product" in probe.largest_op
            fix = ("an attention matrix: use a larger patch here or downsample earlier" if attention
                   else "use fewer channels or a smaller expansion here, or downsample earlier")
            raise SpecError(
                f"{unit.place}: a {_by(probe.largest_shape)} tensor inside it ({probe.largest_op}) has {limit}; {fix}")
        macs += probe.macs
        if macs > MAX_DESIGN_MACS:
            raise SpecError(
                f"{unit.place}: the design passes {MAX_DESIGN_MACS / 1e9:.0f} GMACs here ({macs / 1e9:.1f} G so far, "
                f"{probe.macs / 1e9:.1f} G in this block); use a smaller kernel or input, fewer channels, "
                "or downsample earlier"
            )
        values += probe.values
        if values > MAX_DESIGN_VALUES:
            raise SpecError(
                f"{unit.place}: the design writes more than {MAX_DESIGN_VALUES // 1_000_000} M values in one pass here "
                f"({probe.values / 1e6:.0f} M in this block); use a smaller input or fewer blocks at high resolution"
            )
        if (key, shape) not in seen:
            seen.add((key, shape))
            ops += probe.ops
            if ops > MAX_DESIGN_OPS:
                raise SpecError(
                    f"{unit.place}: the design's distinct blocks run more than {MAX_DESIGN_OPS} operations here "
                    f"({probe.ops} in this block); use fewer distinct blocks (a stage repeat costs nothing) "
                    "or shallower transformers"
                )
        rows.append(UnitShape(unit, shape, out, probe.params, probe.macs))
        shape = out
    return rows


def channels_before(spec: ArchitectureSpec, stage: int, position: int) -> int:
    """Channels that flow into block ``position`` (1-based, written list) of ``stage`` (0 = stem).

    That is the input of the block now at ``position`` (or of one inserted there); ``position`` may
    be one past the last block. ``stage`` may be ``len(spec.stages) + 1``: a new last stage,
    which sees what the head sees.
    """
    if stage < 0:
        raise SpecError(f"there is no stage {stage}; use 0 for the stem or 1 to {len(spec.stages) + 1}")
    rows = {row.unit.address: row for row in check_size(spec)}
    if stage > len(spec.stages):
        return int(rows[UnitAddress.head()].in_shape[1])
    count = len(spec.stem) if stage == 0 else len(spec.stages[stage - 1].blocks)
    if not 1 <= position <= count + 1:
        where = "the stem" if stage == 0 else f"stage {stage}"
        raise SpecError(f"{where} has {count} blocks; give a position from 1 to {count + 1}")
    if position == 1:
        return spec.input.channels if stage == 0 else int(rows[UnitAddress(stage, 1)].in_shape[1])
    return int(rows[UnitAddress(stage, position - 1)].out_shape[1])
