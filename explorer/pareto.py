"""Pareto ranking for multi-objective search: non-dominated sorting, crowding, hypervolume.

Objectives come as an ``n×m`` array of scores with a direction per column (``maximise`` for
accuracy, minimise for latency, MACs, params, peak memory). Everything here is a pure
function of those numbers.

- **Pareto rank** (non-dominated sorting, Deb et al. 2002): rank 0 is the set of points no
  other point dominates; rank k is the non-dominated set once ranks < k are removed. Point a
  dominates b when a is no worse in every objective and strictly better in one. Computed by
  ``moocore.pareto_rank`` (a maintained C implementation).
- **Crowding distance** (NSGA-II's diversity tie-break): within one rank, for each objective,
  sort the points and add ``(f[i+1] − f[i−1]) / (f_max − f_min)`` to each interior point;
  the two extremes get ∞ so the ends of a front always survive.
- **Selection order**: by rank, then by larger crowding distance (``nsga2_order``).
- **Hypervolume**: the volume of objective space dominated by the front and bounded by a
  reference point, computed by ``moocore.hypervolume`` after scaling every objective to
  [0, 1] with the given bounds (so MACs and accuracy weigh alike). Larger is better; it only
  grows when the front improves.
"""

from __future__ import annotations

from collections.abc import Sequence

import moocore
import numpy as np

__all__ = ["crowding_distance", "hypervolume", "nsga2_order", "pareto_front", "pareto_ranks"]


def _as_minimisation(points: np.ndarray, maximise: Sequence[bool]) -> np.ndarray:
    """Flip the sign of maximised columns so that every column is minimised.   n×m -> n×m"""
    signs = np.where(np.asarray(maximise, dtype=bool), -1.0, 1.0)
    return np.asarray(points, dtype=float).reshape(len(points), len(signs)) * signs


def pareto_ranks(points: Sequence[Sequence[float]] | np.ndarray, maximise: Sequence[bool]) -> np.ndarray:
    """Rank of every point (0 = non-dominated).   n×m -> n (int)"""
    if len(points) == 0:
        return np.zeros(0, dtype=int)
    return np.asarray(moocore.pareto_rank(_as_minimisation(np.asarray(points), maximise)), dtype=int)


def pareto_front(points: Sequence[Sequence[float]] | np.ndarray, maximise: Sequence[bool]) -> list[int]:
    """Indices of the non-dominated points, in input order."""
    return [int(i) for i in np.flatnonzero(pareto_ranks(points, maximise) == 0)]


def crowding_distance(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each point among ``points`` (one front).   n×m -> n

    Extremes of any objective get ``inf``; an objective on which all points agree adds 0.
    """
    f = np.asarray(points, dtype=float)
    n = len(f)
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for column in f.T:
        order = np.argsort(column, kind="stable")
        span = column[order[-1]] - column[order[0]]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[order[2:]] - column[order[:-2]]) / span
    return distance


def nsga2_order(points: Sequence[Sequence[float]] | np.ndarray, maximise: Sequence[bool]) -> list[int]:
    """Indices sorted best first: by Pareto rank, then by larger crowding distance within a rank."""
    f = np.asarray(points, dtype=float)
    if len(f) == 0:
        return []
    ranks = pareto_ranks(f, maximise)
    crowd = np.zeros(len(f))
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        crowd[members] = crowding_distance(f[members])
    return sorted(range(len(f)), key=lambda i: (int(ranks[i]), -crowd[i], i))


def hypervolume(
    points: Sequence[Sequence[float]] | np.ndarray,
    bounds: Sequence[tuple[float, float]],
) -> float:
    """Hypervolume of ``points`` in the unit cube given per-objective ``bounds`` (best, worst).

    Each objective is scaled so that ``best`` maps to 0 and ``worst`` to 1 (then clipped to
    [0, 1]); the reference point is (1, …, 1). A maximised objective is given as (high, low),
    so the bounds alone carry each objective's direction. The result lies in [0, 1]: the share
    of the box between the bounds that the points dominate.
    """
    f = np.asarray(points, dtype=float)
    if len(f) == 0:
        return 0.0
    best = np.array([b for b, _ in bounds], dtype=float)
    worst = np.array([w for _, w in bounds], dtype=float)
    span = np.where(worst != best, worst - best, 1.0)
    scaled = np.clip((f.reshape(len(f), len(best)) - best) / span, 0.0, 1.0)
    return float(moocore.hypervolume(scaled, ref=np.ones(len(best))))
