"""Pareto ranking, crowding distance, NSGA-II order and hypervolume on hand-checked points."""

from itertools import pairwise

import numpy as np
import pytest

from explorer.pareto import crowding_distance, hypervolume, nsga2_order, pareto_front, pareto_ranks

# columns: accuracy (maximise), latency ms (minimise)
POINTS = [
    [0.90, 10.0],  # 0: front
    [0.80, 5.0],   # 1: front
    [0.85, 12.0],  # 2: dominated by 0 -> rank 1
    [0.95, 20.0],  # 3: front
    [0.70, 6.0],   # 4: dominated by 1 -> rank 1
    [0.60, 30.0],  # 5: dominated by everything -> rank 2
]
MAXIMISE = [True, False]


def test_ranks_follow_dominance() -> None:
    assert pareto_ranks(POINTS, MAXIMISE).tolist() == [0, 0, 1, 0, 1, 2]
    assert pareto_front(POINTS, MAXIMISE) == [0, 1, 3]


def test_direction_matters() -> None:
    # if accuracy were minimised, point 5 (the lowest accuracy) would join the front
    assert pareto_ranks(POINTS, [False, False]).tolist()[5] == 0


def test_crowding_gives_extremes_infinity_and_interior_the_normalised_gap() -> None:
    front = np.array([[0.80, 5.0], [0.90, 10.0], [0.95, 20.0]])
    d = crowding_distance(front)
    assert np.isinf(d[0]) and np.isinf(d[2])
    # interior: (0.95-0.80)/(0.95-0.80) + (20-5)/(20-5) = 2
    assert d[1] == pytest.approx(2.0)


def test_nsga2_order_is_rank_first_then_spread() -> None:
    order = nsga2_order(POINTS, MAXIMISE)
    assert set(order[:3]) == {0, 1, 3} and set(order[3:5]) == {2, 4} and order[5] == 5
    # within the front the extremes (1 and 3, infinite crowding) come before the interior point 0
    assert order[2] == 0


def test_hypervolume_of_known_rectangles() -> None:
    # one point at the best corner dominates the whole unit box
    bounds = [(1.0, 0.0), (0.0, 100.0)]  # accuracy: best 1, worst 0; latency: best 0, worst 100
    assert hypervolume([[1.0, 0.0]], bounds) == pytest.approx(1.0)
    # (0.5, 50) scales to (0.5, 0.5): dominates a quarter of the box
    assert hypervolume([[0.5, 50.0]], bounds) == pytest.approx(0.25)
    # two points: union of [0.5,1]x[0,1]... (0.5,0.2)->(0.5,0.2) and (0.8,60)->(0.2,0.6)
    hv = hypervolume([[0.5, 20.0], [0.8, 60.0]], bounds)
    assert hv == pytest.approx(0.5 * 0.8 + 0.3 * 0.4)


def test_hypervolume_never_drops_when_a_point_is_added() -> None:
    rng = np.random.default_rng(0)
    bounds = [(1.0, 0.0), (0.0, 100.0), (0.0, 10.0)]
    pts = np.column_stack([rng.uniform(0, 1, 30), rng.uniform(0, 100, 30), rng.uniform(0, 10, 30)])
    values = [hypervolume(pts[: k + 1], bounds) for k in range(len(pts))]
    assert all(b >= a - 1e-12 for a, b in pairwise(values))
    assert 0.0 < values[-1] <= 1.0


def test_empty_inputs() -> None:
    assert pareto_ranks([], MAXIMISE).tolist() == []
    assert nsga2_order([], MAXIMISE) == []
    assert hypervolume([], [(1.0, 0.0), (0.0, 1.0)]) == 0.0
