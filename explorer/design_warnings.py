"""The design analyzer: what is risky in a design before anything runs (as MATLAB's network analyzer).

``design_warnings(spec, analysis)`` lists, in execution order, each with the unit it concerns,
what is wrong and the fix:

- ``collapse``: the spatial size reaches 1×1 before the head, so the units after it see a
  single pixel (their k×k kernels and the head's pooling do nothing spatial);
- ``aliasing``: a stride-2 unit that subsamples without low-pass filtering (Zhang 2019): a
  ``conv`` / ``dwsep`` / ``ir`` with ``anti_alias: false`` or a ``repconv`` / ``mobileone``
  (no anti-aliased option); ``blurpool`` is the anti-aliased downsampling itself;
- ``channels``: a written width (``out``, a head's ``hidden``) that is not a multiple of 8,
  which vector units and int8 kernels pad to the next multiple anyway;
- ``embedding``: an attention condenser whose embedding is narrower than 8 channels, or whose
  ``embed_ratio`` asks for fewer than 8 (C · ratio < 8: rounded up to 8, so the ratio has no effect);
- ``divisibility``: the input size is not a multiple of the network's total stride, so some
  stride-2 unit halves an odd size (``ceil``) and features stop lining up with input pixels.

Each written block is reported once for the width checks (not once per stage repeat). Pure: a
function of the spec and its ``Analysis``; no UI here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .analysis import Analysis
from .edit import BlockRef
from .graph import meta_block
from .spec import ArchitectureSpec, BlockSpec, ParallelSpec, expand_units

__all__ = ["DesignWarning", "design_warnings"]

#: the width vector units and int8 kernels work in
CHANNEL_MULTIPLE = 8
#: the narrowest useful condenser embedding
MIN_EMBEDDING = 8
#: blocks whose ``anti_alias: true`` puts a BlurPool after their strided convolution
ANTI_ALIAS_TYPES = ("conv", "dwsep", "ir")


@dataclass(frozen=True)
class DesignWarning:
    """One finding: ``kind`` (see the module doc), the unit's ``place`` and editor ``key``, the problem, the fix."""

    kind: str
    place: str
    key: str | None
    message: str
    fix: str

    @property
    def text(self) -> str:
        return f"{self.place}: {self.message}; {self.fix}"


def _blocks_of(config: BlockSpec | ParallelSpec, place: str) -> list[tuple[BlockSpec, str]]:
    if isinstance(config, ParallelSpec):
        return [(b, f"{place}, branch {i}, block {j}") for i, col in enumerate(config.branches, 1)
                for j, b in enumerate(col, 1)]
    return [(config, place)]


def _nearest_multiple(value: int, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def design_warnings(spec: ArchitectureSpec, analysis: Analysis) -> list[DesignWarning]:
    """Every warning of a counted design (``analysis = analyze(spec)``), in execution order."""
    units = expand_units(spec)
    out: list[DesignWarning] = []
    collapsed = False
    body = [(u, r) for u, r in zip(units, analysis.blocks, strict=True) if not u.address.is_head]
    odd_halving: tuple[str, str | None, int] | None = None
    total_stride = 1
    for i, (unit, row) in enumerate(body):
        key = BlockRef(unit.address.stage, unit.address.block).key
        h_in, h_out = row.in_shape[2], row.out_shape[2]
        w_in, w_out = row.in_shape[3], row.out_shape[3]
        stride = max(1, round(h_in / h_out)) if h_out else 1
        total_stride *= stride
        if stride > 1 and (h_in % stride or w_in % stride) and odd_halving is None:
            odd_halving = (unit.place, key, h_in if h_in % stride else w_in)
        if not collapsed and h_out == 1 and w_out == 1 and (h_in, w_in) != (1, 1):
            collapsed = True
            after = len(body) - i - 1
            if after:
                out.append(DesignWarning(
                    "collapse", unit.place, key,
                    f"the spatial size collapses to 1×1 here ({h_in}×{w_in} → 1×1), {after} unit"
                    f"{'s' if after > 1 else ''} before the head then see a single pixel",
                    "remove a stride-2 unit before it (or make it stride 1), or raise the input size"))
        first_copy = unit.address.repeat == 1
        for block, place in _blocks_of(unit.config, unit.place):
            p = block.params
            if p.get("stride", 1) > 1 and first_copy:
                if block.type in ANTI_ALIAS_TYPES and not p.get("anti_alias", False):
                    out.append(DesignWarning(
                        "aliasing", place, key, f"{block.type} with stride {p['stride']} subsamples without "
                        "anti-aliasing (small shifts of the input change its output)",
                        "set anti_alias: true, or put a blurpool before it and give it stride 1"))
                elif block.type in ("repconv", "mobileone"):
                    out.append(DesignWarning(
                        "aliasing", place, key, f"{block.type} with stride {p['stride']} subsamples without "
                        "anti-aliasing (it has no anti-aliased option)",
                        "put a blurpool before it and give it stride 1"))
            if not first_copy:  # a written block's widths once, not once per stage repeat
                continue
            for name in ("out", "hidden"):
                width = p.get(name)
                if isinstance(width, int) and width > 0 and width % CHANNEL_MULTIPLE:
                    out.append(DesignWarning(
                        "channels", place, key, f"{name} {width} is not a multiple of {CHANNEL_MULTIPLE} "
                        "(vector units and int8 kernels pad it to the next multiple)",
                        f"use {name} {_nearest_multiple(width, CHANNEL_MULTIPLE)}"))
            if block.type == "attention_condenser":
                c = row.in_shape[1]
                ratio = float(p.get("embed_ratio", 0.25))
                condenser: Any = meta_block(block, c)  # the block's own width, built on meta
                embed = int(condenser.embed_channels)
                if embed < MIN_EMBEDDING:
                    out.append(DesignWarning(
                        "embedding", place, key, f"the condenser's embedding is {embed} channels wide "
                        f"(its input has only {c}), narrower than {MIN_EMBEDDING}",
                        f"widen the unit before it to at least {MIN_EMBEDDING} channels"))
                elif c * ratio < MIN_EMBEDDING:
                    out.append(DesignWarning(
                        "embedding", place, key, f"embed_ratio {ratio:g} of {c} channels asks for a "
                        f"{c * ratio:.1f}-channel embedding, narrower than {MIN_EMBEDDING} (it is rounded up to "
                        f"{embed}, so the ratio has no effect)",
                        f"use embed_ratio ≥ {math.ceil(MIN_EMBEDDING / c * 100) / 100:g}"))
    hidden = spec.head.params.get("hidden")
    if isinstance(hidden, int) and hidden > 0 and hidden % CHANNEL_MULTIPLE:
        out.append(DesignWarning(
            "channels", "head", "head", f"hidden {hidden} is not a multiple of {CHANNEL_MULTIPLE} "
            "(vector units and int8 kernels pad it to the next multiple)",
            f"use hidden {_nearest_multiple(hidden, CHANNEL_MULTIPLE)}"))
    if odd_halving is not None and total_stride > 1:
        place, where, size = odd_halving
        hw = spec.input.hw
        bad = [s for s in hw if s % total_stride]
        lower = max(total_stride, min(hw) // total_stride * total_stride)
        upper = lower + total_stride
        out.append(DesignWarning(
            "divisibility", place, where,
            f"the input {hw[0]}×{hw[1]} is not divisible by the network's total stride {total_stride}"
            + (f" ({bad[0]} = {bad[0] // total_stride}·{total_stride} + {bad[0] % total_stride})" if bad else "")
            + f": this unit halves an odd size {size} (rounding up)",
            f"use an input size that is a multiple of {total_stride}, e.g. {lower} or {upper}"))
    order = {id(w): i for i, w in enumerate(out)}
    return sorted(out, key=lambda w: (w.kind == "divisibility", order[id(w)]))
