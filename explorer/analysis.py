"""Exact, instant analysis: parameters, multiply-accumulates, activation memory, model size.

Counting is fvcore's (``FlopCountAnalysis``, one per multiply-accumulate of convolutions,
linear layers and matmuls, plus its conventions for norms, pooling and upsampling), applied
to the network **as deployed**: eval mode, re-parameterisable blocks folded.

Instant: a network is a sequence of units (``expand_units``), and every unit is counted on its
own, at its input shape, with the result cached by (unit config, input shape). A unit is counted
on the meta device with fvcore's conventions (``explorer.unit_count``: shapes only, a few
milliseconds); a unit calling a torch function that counter does not know is traced by fvcore on
real tensors instead (``count_unit_reference``, the reference the tests compare against). The network's
totals are sums over units, equal to a fresh whole-model fvcore count (the tests check this
for every preset). After an edit of one block only the units whose config or input shape
changed are counted again.

Definitions (batch 1, fp32):
- ``activation_bytes`` of a unit: bytes of its output tensor.
- ``peak_bytes`` of a unit: the most bytes live at once while it runs, taking for each leaf
  op the unit's input (held, conservatively, until the unit ends), the op's input and output.
- ``peak_activation_bytes``: the largest unit peak: a sequential schedule frees a unit's
  input once the next unit starts.
- ``weight_bytes``, ``bytes_read``, ``bytes_written`` of a unit (fp32, 4 bytes per element): its
  memory traffic per inference, per kernel of its deployed forward (``explorer.traffic``: every
  kernel reads its inputs and writes its result once; views move nothing; a BatchNorm or an
  activation right after a convolution is fused into it). ``bytes_read`` = weights read +
  activations read. At int8 every element is 1 byte: ``bytes_read_int8 = bytes_read / 4``.
- ``uncounted_macs``: attention products computed by ``scaled_dot_product_attention``,
  which fvcore does not count; reported beside ``macs`` so nothing is hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import torch
import torch.nn as nn
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from pydantic import BaseModel

from .build import build_unit, reparameterize
from .limits import meta_unit
from .spec import ArchitectureSpec, UnitAddress, config_from_json, expand_units
from .traffic import unit_traffic
from .unit_count import UnsupportedOpError, count_on_meta

__all__ = ["Analysis", "BlockRow", "Progress", "UnitCount", "analyze", "clear_cache", "count_unit",
           "count_unit_reference"]

BYTES_FP32 = 4

#: ``progress(fraction done in [0, 1], what is being counted)``
Progress = Callable[[float, str], None]


class UnitCount(BaseModel):
    """Counts of one unit at one input shape."""

    out_shape: tuple[int, ...]
    params: int
    params_train: int
    macs: int
    uncounted_macs: int
    activation_bytes: int
    peak_bytes: int


class BlockRow(BaseModel):
    """One row of the per-block table: one unit of ``expand_units(spec)``.

    ``address`` says where the unit is written (key on it); ``name`` and ``place`` are labels;
    ``stage`` orders the network for charts (0 = stem, 1..n = stages, n + 1 = head).
    """

    address: UnitAddress
    name: str
    place: str
    type: str
    stage: int
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    params: int
    macs: int
    uncounted_macs: int
    activation_bytes: int
    peak_bytes: int
    weight_bytes: int = 0  # fp32 bytes of weights read (memory traffic: see the module docstring)
    bytes_read: int = 0  # fp32 bytes read per inference: weights + activations
    bytes_written: int = 0  # fp32 bytes of activations written per inference

    @property
    def bytes_read_int8(self) -> int:
        return self.bytes_read // BYTES_FP32

    @property
    def bytes_written_int8(self) -> int:
        return self.bytes_written // BYTES_FP32


class Analysis(BaseModel):
    """Whole-network numbers and the per-block table."""

    name: str
    input_shape: tuple[int, ...]
    params: int
    params_train: int
    macs: int
    uncounted_macs: int
    peak_activation_bytes: int
    size_fp32_bytes: int
    size_int8_bytes: int
    blocks: list[BlockRow]
    bytes_read: int = 0  # fp32 memory traffic per inference, summed over units
    bytes_written: int = 0

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def summary(self) -> dict[str, Any]:
        """The command line's ``--json`` contract."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "params": self.params,
            "macs": self.macs,
            "peak_activation_bytes": self.peak_activation_bytes,
            "size_fp32_bytes": self.size_fp32_bytes,
            "size_int8_bytes": self.size_int8_bytes,
            "uncounted_macs": self.uncounted_macs,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "blocks": [
                {"name": b.name, "type": b.type, "out_shape": list(b.out_shape), "params": b.params, "macs": b.macs,
                 "bytes_read": b.bytes_read, "bytes_written": b.bytes_written,
                 "bytes_read_int8": b.bytes_read_int8, "bytes_written_int8": b.bytes_written_int8}
                for b in self.blocks
            ],
        }


def _sdpa_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """softmax(QKᵀ)V: B·H·T·S·d_k for QKᵀ plus B·H·T·S·d_v for the product with V."""
    q, k, v = (get_shape(inputs[i]) for i in range(3))
    batch = 1
    for d in q[:-2]:
        batch *= d
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def fvcore_counter(module: nn.Module, x: torch.Tensor) -> FlopCountAnalysis:
    """fvcore's counter with warnings silenced and attention products counted separately."""
    counter = FlopCountAnalysis(module, x)
    counter.set_op_handle("aten::scaled_dot_product_attention", _sdpa_macs)
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    return counter


def _split_totals(counter: FlopCountAnalysis) -> tuple[int, int]:
    """(macs as default fvcore counts them, attention macs it would skip)."""
    total = int(counter.total())
    attention = int(counter.by_operator().get("scaled_dot_product_attention", 0))
    return total - attention, attention


def _peak_bytes(module: nn.Module, x: torch.Tensor) -> int:
    live: list[int] = []
    unit_in = (x.data_ptr(), x.numel())

    def hook(_m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        tensors = {unit_in[0]: unit_in[1]}
        for t in [*args, out]:
            if isinstance(t, torch.Tensor):
                tensors[t.data_ptr()] = t.numel()
        live.append(sum(tensors.values()))

    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            out = module(x)
    finally:
        for h in handles:
            h.remove()
    live.append(x.numel() + out.numel())
    return max(live) * BYTES_FP32


def _count_real(config_json: str, in_shape: tuple[int, ...], num_classes: int
                ) -> tuple[int, int, tuple[int, ...], int, int, int]:
    """(params_train, params, out shape, MACs, attention MACs, peak bytes): fvcore on real tensors (the reference)."""
    with torch.random.fork_rng(devices=[]):  # seeded weights, and the caller's random state left as it was
        torch.manual_seed(0)
        module = build_unit(config_from_json(config_json), in_shape[1], num_classes)
    params_train = sum(p.numel() for p in module.parameters())
    reparameterize(module)
    params = sum(p.numel() for p in module.parameters())
    x = torch.zeros(in_shape)
    with torch.no_grad():
        macs, attention = _split_totals(fvcore_counter(module, x))
        peak = _peak_bytes(module, x)
        out_shape = tuple(module(x).shape)
    return params_train, params, out_shape, macs, attention, peak


def _count_meta(config_json: str, in_shape: tuple[int, ...], num_classes: int
                ) -> tuple[int, int, tuple[int, ...], int, int, int]:
    """The same numbers from one pass on the meta device (``explorer.unit_count``); ``UnsupportedOpError`` if unsure."""
    params_train = sum(p.numel() for p in meta_unit(config_json, in_shape[1], num_classes, deployed=False).parameters())
    module = meta_unit(config_json, in_shape[1], num_classes, deployed=True)
    params = sum(p.numel() for p in module.parameters())
    out_shape, macs, attention, peak = count_on_meta(module, in_shape)
    return params_train, params, out_shape, macs, attention, peak


def count_unit_reference(config_json: str, in_shape: tuple[int, ...], num_classes: int) -> UnitCount:
    """``count_unit`` by fvcore on real tensors, uncached (what the fast count is tested against)."""
    return _unit_count(*_count_real(config_json, tuple(in_shape), num_classes))


@lru_cache(maxsize=8192)
def _count_unit_cached(config_json: str, in_shape: tuple[int, ...], num_classes: int) -> UnitCount:
    try:
        counts = _count_meta(config_json, in_shape, num_classes)
    except (UnsupportedOpError, NotImplementedError, RuntimeError):  # an op it does not know: the reference decides
        counts = _count_real(config_json, in_shape, num_classes)
    return _unit_count(*counts)


def _unit_count(params_train: int, params: int, out_shape: tuple[int, ...], macs: int, attention: int,
                peak: int) -> UnitCount:
    numel = 1
    for d in out_shape:
        numel *= d
    return UnitCount(
        out_shape=out_shape,
        params=params,
        params_train=params_train,
        macs=macs,
        uncounted_macs=attention,
        activation_bytes=numel * BYTES_FP32,
        peak_bytes=peak,
    )


def count_unit(config_json: str, in_shape: tuple[int, ...], num_classes: int) -> UnitCount:
    """Counts for one unit (its config as JSON) at ``in_shape``; cached."""
    return _count_unit_cached(config_json, tuple(in_shape), num_classes)


def clear_cache() -> None:
    """Forget every cached unit count (for benchmarks of a cold count)."""
    _count_unit_cached.cache_clear()
    unit_traffic.cache_clear()


def analyze(spec: ArchitectureSpec, progress: Progress | None = None) -> Analysis:
    """Count a validated design at its input size: totals and one row per unit.

    Another input size or class count is another design: ``analyze(retarget(spec, input_size=160))``.
    ``progress`` is called as the units are counted (about ten times, then ``(1.0, "done")``).
    """
    shape: tuple[int, ...] = (1, spec.input.channels, *spec.input.hw)
    input_shape = shape
    rows: list[BlockRow] = []
    params_train = 0
    units = expand_units(spec)
    every = max(1, len(units) // 10)
    for i, unit in enumerate(units):
        if progress is not None and i % every == 0:
            progress(i / len(units), f"counting {unit.place}")
        c = count_unit(unit.config.model_dump_json(), shape, spec.num_classes)
        params_train += c.params_train
        traffic = unit_traffic(unit.config.model_dump_json(), shape, spec.num_classes)
        rows.append(
            BlockRow(
                address=unit.address,
                name=unit.name,
                place=unit.place,
                type=unit.type,
                stage=unit.stage,
                in_shape=shape,
                out_shape=c.out_shape,
                params=c.params,
                macs=c.macs,
                uncounted_macs=c.uncounted_macs,
                activation_bytes=c.activation_bytes,
                peak_bytes=c.peak_bytes,
                weight_bytes=traffic.weights * BYTES_FP32,
                bytes_read=(traffic.weights + traffic.read) * BYTES_FP32,
                bytes_written=traffic.written * BYTES_FP32,
            )
        )
        shape = c.out_shape
    if progress is not None:
        progress(1.0, "done")
    params = sum(r.params for r in rows)
    return Analysis(
        name=spec.name,
        input_shape=input_shape,
        params=params,
        params_train=params_train,
        macs=sum(r.macs for r in rows),
        uncounted_macs=sum(r.uncounted_macs for r in rows),
        peak_activation_bytes=max(r.peak_bytes for r in rows),
        size_fp32_bytes=params * BYTES_FP32,
        size_int8_bytes=params,
        blocks=rows,
        bytes_read=sum(r.bytes_read for r in rows),
        bytes_written=sum(r.bytes_written for r in rows),
    )
