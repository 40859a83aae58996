"""What a search optimises: two or three of accuracy, latency, MACs, params and peak memory.

Each objective reads one field of a candidate's record and has a direction: ``accuracy`` (the proxy
task's validation accuracy, see ``task.ProxyTask``) is maximised, every cost is minimised. The
hypervolume of a front is measured inside fixed bounds (``hypervolume_bounds``) so that the curve of
one search is comparable from its first generation to its last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .constraints import Constraints

__all__ = ["OBJECTIVES", "Objective", "hypervolume_bounds", "objective_values", "parse_objectives"]


@dataclass(frozen=True)
class Objective:
    name: str
    field: str  # the candidate record's field it reads
    maximise: bool
    label: str  # for tables and charts
    scale: float  # display unit: value / scale
    unit: str


OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("accuracy", "accuracy", True, "proxy accuracy", 1.0, ""),
    Objective("latency", "latency_ms", False, "latency", 1.0, "ms"),
    Objective("macs", "macs", False, "MACs", 1e9, "G"),
    Objective("params", "params", False, "params", 1e6, "M"),
    Objective("peak", "peak_activation_bytes", False, "peak activations", 2**20, "MiB"),
)}


def parse_objectives(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"accuracy,latency"`` (or a list) -> ``("accuracy", "latency")``; one to three distinct names.

    Two or three make a multi-objective (Pareto) search; one is a plain minimisation (or maximisation).
    """
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [str(n).strip() for n in value]
    names = [n for n in names if n]
    choices = ", ".join(OBJECTIVES)
    if not names:
        raise ValueError(f"no objective given; use two or three of {choices} (e.g. accuracy,latency)")
    for n in names:
        if n not in OBJECTIVES:
            raise ValueError(f"unknown objective {n!r}; use two or three of {choices}")
    if len(set(names)) != len(names):
        raise ValueError(f"objective listed twice in {','.join(names)}; name each once")
    if len(names) > 3:
        raise ValueError(f"{len(names)} objectives given; use at most three (a front in more is too thin to read)")
    return tuple(names)


def objective_values(record: Mapping[str, Any], names: Sequence[str]) -> list[float]:
    """The record's value of each objective, in ``names`` order (raw units: ms, MACs, params, bytes, 0–1)."""
    out = []
    for n in names:
        value = record.get(OBJECTIVES[n].field)
        if value is None:
            raise ValueError(f"candidate has no {OBJECTIVES[n].label}; it cannot be ranked on {n}")
        out.append(float(value))
    return out


def hypervolume_bounds(names: Sequence[str], base: Mapping[str, Any], constraints: Constraints
                       ) -> list[tuple[float, float]]:
    """(best, worst) per objective, fixed for the whole search so that its hypervolume curve is comparable.

    - accuracy: (1, 0): the whole range of a proportion;
    - a cost: (0, budget) when the search has a budget on it (``--max-params`` …), else
      (0, 2 × the starting design's value): a design twice as costly as the start adds nothing.

    The bounds depend only on the start and the constraints, both fixed when the search begins, so a
    resumed search measures with the same box.
    """
    budgets = {"params": constraints.max_params, "macs": constraints.max_macs,
               "peak": constraints.max_peak_activation_bytes, "latency": constraints.max_latency_ms}
    out: list[tuple[float, float]] = []
    for n in names:
        if n == "accuracy":
            out.append((1.0, 0.0))
            continue
        budget = budgets[n]
        start = base.get(OBJECTIVES[n].field)
        worst = float(budget) if budget else 2.0 * float(start or 0.0)
        out.append((0.0, worst if worst > 0 else 1.0))
    return out
