"""A search as its stored evaluations tell it: candidates, Pareto front and hypervolume curve.

The UI draws a search while it runs and after it ended (its own, or any search in the store) from the
same place: the ``candidates`` rows the journal commits as each evaluation finishes
(``Store.search_evaluations``). :func:`view_from_evaluations` folds them the way the engine does
(``engine._Entry.record``):

- a candidate's costs (params, MACs, peak activations, latency) come from its first evaluation (rung 0),
  its accuracy from its highest rung with one; it is feasible when every one of its evaluations was;
- the front is the non-dominated set of the feasible candidates (``explorer.pareto.pareto_front``,
  accuracy maximised, costs minimised), measured inside the search's fixed bounds
  (``objectives.hypervolume_bounds``: from the start's numbers and the budgets);
- the hypervolume curve has one point after every evaluation, in ``seq`` order. With one evaluation per
  generation (the default, and what the UI runs) this is the engine's per-generation curve
  (``SearchResult.fronts``); with larger batches it has more points and the same last value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..pareto import hypervolume, pareto_front
from ..store import Store
from .constraints import Constraints
from .objectives import OBJECTIVES, hypervolume_bounds, objective_values

__all__ = ["SearchView", "ViewCandidate", "stored_view", "view_from_evaluations"]


@dataclass
class ViewCandidate:
    """One design of a search with its numbers at its highest fidelity (no YAML: ``design_id`` names it)."""

    index: int
    kind: str  # start | child
    mutation: str
    design_id: int | None
    params: int
    macs: int
    peak_activation_bytes: int
    latency_ms: float | None
    accuracy: float | None
    fidelity_steps: int
    feasible: bool
    reasons: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"params": self.params, "macs": self.macs, "peak_activation_bytes": self.peak_activation_bytes,
                "latency_ms": self.latency_ms, "accuracy": self.accuracy}

    def values(self, names: Sequence[str]) -> list[float] | None:
        """The objectives' values (raw units), or None when one is missing (an infeasible design)."""
        try:
            return objective_values(self.record(), names)
        except ValueError:
            return None


@dataclass
class SearchView:
    """What the tables and charts of a search show."""

    search_id: int | None
    objectives: list[str]
    status: str
    candidates: list[ViewCandidate]
    front: list[int]  # candidate indices, best in the first objective first
    hypervolume: list[float]  # after each evaluation
    evaluations: int
    started_at: float | None = None
    elapsed_s: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def feasible(self) -> int:
        return sum(c.feasible for c in self.candidates)

    @property
    def rejected(self) -> int:
        return sum(not c.feasible for c in self.candidates)

    def candidate(self, index: int) -> ViewCandidate | None:
        return next((c for c in self.candidates if c.index == index), None)


def _rank_key(c: ViewCandidate, names: Sequence[str]) -> tuple[float, ...]:
    values = c.values(names) or [float("inf")] * len(names)
    return (*(-v if OBJECTIVES[n].maximise else v for n, v in zip(names, values, strict=True)), c.index)


def view_from_evaluations(
    evaluations: Sequence[Mapping[str, Any]], objectives: Sequence[str], constraints: Constraints,
) -> tuple[list[ViewCandidate], list[int], list[float]]:
    """(candidates by index, the front's indices best-first, hypervolume after each evaluation).

    ``evaluations``: ``Store.search_evaluations`` rows (meta ``candidate, kind, fidelity_steps, mutation`` and
    ``result``; ``design_id``), in ``seq`` order.
    """
    names = list(objectives)
    maximise = [OBJECTIVES[n].maximise for n in names]
    by_index: dict[int, ViewCandidate] = {}
    top: dict[int, int] = {}  # candidate -> fidelity of its accuracy
    bounds: list[tuple[float, float]] | None = None
    curve: list[float] = []
    for ev in sorted(evaluations, key=lambda e: int(e.get("seq", 0))):
        r = ev["result"]
        i = int(ev["candidate"])
        c = by_index.get(i)
        if c is None or ev.get("kind") != "promotion":
            c = by_index[i] = ViewCandidate(
                index=i, kind=str(ev.get("kind", "child")), mutation=str(ev.get("mutation", "")),
                design_id=ev.get("design_id"), params=int(r["params"]), macs=int(r["macs"]),
                peak_activation_bytes=int(r["peak_activation_bytes"]), latency_ms=r.get("latency_ms"),
                accuracy=None, fidelity_steps=0, feasible=bool(r["feasible"]), reasons=list(r.get("reasons", [])))
        else:
            c.feasible = c.feasible and bool(r["feasible"])
            c.reasons += [x for x in r.get("reasons", []) if x not in c.reasons]
        steps = int(ev.get("fidelity_steps", r.get("fidelity_steps", 0)) or 0)
        if r.get("accuracy") is not None and steps >= top.get(i, -1):
            top[i] = steps
            c.accuracy, c.fidelity_steps = float(r["accuracy"]), steps
        if bounds is None:  # the start: its numbers fix the box, as the engine's
            bounds = hypervolume_bounds(names, r, constraints)
        points = [v for x in by_index.values() if x.feasible and (v := x.values(names)) is not None]
        front = pareto_front(points, maximise) if points else []
        curve.append(hypervolume([points[k] for k in front], bounds) if front else 0.0)
    candidates = [by_index[i] for i in sorted(by_index)]
    kept = [(c, v) for c in candidates if c.feasible and (v := c.values(names)) is not None]
    front_pos = pareto_front([v for _, v in kept], maximise) if kept else []
    best_first = sorted((kept[k][0] for k in front_pos), key=lambda c: _rank_key(c, names))
    return candidates, [c.index for c in best_first], curve


def stored_view(store: Store, search_id: int) -> SearchView:
    """Search ``search_id`` of ``store`` as it stands now (running or ended); ``ValueError`` if there is none."""
    row = store.get_search(search_id)
    config = row["config"]
    names = [n for n in str(row["objectives"]).split(",") if n]
    constraints = Constraints.model_validate(config.get("constraints", {}))
    evaluations = store.search_evaluations(search_id)
    candidates, front, curve = view_from_evaluations(evaluations, names, constraints)
    return SearchView(search_id=search_id, objectives=names, status=str(row["status"]), candidates=candidates,
                      front=front, hypervolume=curve, evaluations=len(evaluations), started_at=row.get("started_at"),
                      elapsed_s=float(row.get("elapsed_s") or 0.0), config=config, error=row.get("error"))
