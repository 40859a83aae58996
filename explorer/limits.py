"""Size limits, checked before any real tensor is allocated.

Every unit is built on PyTorch's ``meta`` device (shapes and dtypes, no storage) and run on a
meta tensor, which gives exact parameter counts and output shapes for free. A spec whose
parameters, channels or activations exceed the limits below is refused with a message that
says how to shrink it; so is one whose shapes do not fit (a stride that runs out of pixels,
parallel columns that disagree).
"""

from __future__ import annotations

import json
from functools import lru_cache

import torch

from .build import build_unit
from .spec import ArchitectureSpec, BlockSpec, ParallelSpec, SpecError, expand_units

__all__ = ["MAX_PARAMS", "MAX_ACTIVATION_ELEMENTS", "check_size", "config_from_json", "meta_probe"]

MAX_PARAMS = 50_000_000
MAX_ACTIVATION_ELEMENTS = 1 << 27  # 128 M floats = 512 MiB for one tensor at batch 1
MAX_CHANNELS = 4096


def config_from_json(config_json: str) -> BlockSpec | ParallelSpec:
    """Inverse of ``config.model_dump_json()`` for a unit's config (a hashable cache key)."""
    raw = json.loads(config_json)
    return ParallelSpec.model_validate(raw) if raw.get("type") == "parallel" else BlockSpec.model_validate(raw)


@lru_cache(maxsize=4096)
def meta_probe(config_json: str, in_shape: tuple[int, ...], num_classes: int) -> tuple[tuple[int, ...], int]:
    """(output shape, parameter count) of one unit, computed on the meta device.

    The unit runs in eval mode, as ``analysis`` counts it: shapes and parameters are the same in
    both modes, and train-mode BatchNorm would refuse the batch of one at a 1×1 map.
    """
    config = config_from_json(config_json)
    with torch.device("meta"):
        module = build_unit(config, in_shape[1], num_classes).eval()
        out = module(torch.empty(in_shape))
    params = sum(p.numel() for p in module.parameters())
    return tuple(out.shape), params


def check_size(spec: ArchitectureSpec) -> list[tuple[str, tuple[int, ...], tuple[int, ...], int]]:
    """Walk the units on the meta device; raise ``SpecError`` past a limit.

    Returns (unit name, input shape, output shape, params) per unit.
    """
    shape: tuple[int, ...] = (1, spec.input.channels, *spec.input.hw)
    total = 0
    rows = []
    for unit in expand_units(spec):
        key = unit.config.model_dump_json()
        try:
            out, params = meta_probe(key, shape, spec.num_classes)
        except (ValueError, RuntimeError, IndexError) as exc:
            reason = str(exc).splitlines()[0]
            if len(shape) == 4 and min(shape[-2:]) <= 2:
                reason = (f"the input here is only {shape[-2]}×{shape[-1]}, too small for this block; "
                          "remove a stride-2 block earlier or use a larger input")
            raise SpecError(f"{unit.place}: {reason}") from None
        total += params
        if total > MAX_PARAMS:
            raise SpecError(
                f"{unit.place}: the design passes {MAX_PARAMS // 1_000_000} M parameters here "
                f"({total / 1e6:.1f} M so far); make stages narrower or shallower"
            )
        if unit.name != "head":
            if out[1] > MAX_CHANNELS:
                raise SpecError(f"{unit.place}: {out[1]} channels exceed {MAX_CHANNELS}; use fewer (concat adds widths)")
            elements = 1
            for d in out:
                elements *= d
            if elements > MAX_ACTIVATION_ELEMENTS:
                raise SpecError(
                    f"{unit.place}: its output {out[1]}×{out[2]}×{out[3]} has {elements / 1e6:.0f} M values "
                    f"(limit {MAX_ACTIVATION_ELEMENTS // 1_000_000} M); downsample earlier or use fewer channels"
                )
        rows.append((unit.name, shape, out, params))
        shape = out
    return rows
