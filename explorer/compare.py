"""Compare a design against a pinned baseline: totals with their changes, per-stage sums, the YAML diff.

Pure functions of counted designs (``Analysis``), used by the Design tab's compare panel and by
anyone comparing two designs from Python:

- ``total_deltas(current, baseline)``: params, MACs, peak activations and fp32 / int8 size of
  both, with the change ``current − baseline`` and its share of the baseline (``None`` when the
  baseline's value is 0);
- ``stage_totals(analysis, unit_ms)``: params, MACs and (given per-unit predicted milliseconds,
  ``explorer.latency.predictor.predict_units``) latency summed per stage: ``stem``,
  ``stage 1`` … ``stage n``, ``head``; stages are matched between two designs by that label;
- ``yaml_diff(baseline_text, text)``: a unified diff (``difflib``) of the two designs' YAML.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from .analysis import Analysis
from .spec import UnitAddress

__all__ = ["Delta", "StageTotals", "stage_label_of", "stage_totals", "total_deltas", "yaml_diff"]


@dataclass(frozen=True)
class Delta:
    """One total of both designs: ``change = current − baseline``, ``share = change / baseline``."""

    key: str
    label: str
    current: int
    baseline: int

    @property
    def change(self) -> int:
        return self.current - self.baseline

    @property
    def share(self) -> float | None:
        return self.change / self.baseline if self.baseline else None


@dataclass(frozen=True)
class StageTotals:
    """Sums over a stage's units (repeats included); ``latency_ms`` is ``None`` when not predicted."""

    label: str
    params: int
    macs: int
    latency_ms: float | None


def total_deltas(current: Analysis, baseline: Analysis) -> list[Delta]:
    """The numbers bar's totals of both designs, each with its change."""
    return [
        Delta("params", "params", current.params, baseline.params),
        Delta("macs", "MACs", current.macs, baseline.macs),
        Delta("peak", "peak activations", current.peak_activation_bytes, baseline.peak_activation_bytes),
        Delta("fp32", "size fp32", current.size_fp32_bytes, baseline.size_fp32_bytes),
        Delta("int8", "size int8", current.size_int8_bytes, baseline.size_int8_bytes),
    ]


def stage_label_of(address: UnitAddress) -> str:
    """``stem``, ``stage 2`` or ``head``: how stages are named, and matched, in a comparison."""
    if address.is_head:
        return "head"
    return "stem" if address.is_stem else f"stage {address.stage}"


def stage_totals(analysis: Analysis, unit_ms: Mapping[UnitAddress, float] | None = None) -> list[StageTotals]:
    """Params, MACs and (with ``unit_ms``: unit address -> predicted ms) latency per stage, in order."""
    order: list[str] = []
    sums: dict[str, list[float]] = {}
    for row in analysis.blocks:
        label = stage_label_of(row.address)
        if label not in sums:
            order.append(label)
            sums[label] = [0, 0, 0.0]
        sums[label][0] += row.params
        sums[label][1] += row.macs
        if unit_ms is not None:
            sums[label][2] += unit_ms.get(row.address, 0.0)
    return [StageTotals(label, int(sums[label][0]), int(sums[label][1]),
                        sums[label][2] if unit_ms is not None else None) for label in order]


def yaml_diff(baseline_text: str, text: str, baseline_name: str = "baseline", name: str = "design") -> str:
    """A unified diff from the baseline's YAML to the design's; empty when they are the same."""
    lines = difflib.unified_diff(baseline_text.splitlines(keepends=True), text.splitlines(keepends=True),
                                 fromfile=baseline_name, tofile=name, n=2)
    return "".join(lines)
