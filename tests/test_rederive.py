"""The pure half of benchmarks/rederive_attendnext.py: the choice rule and the verdict against the peers."""

from __future__ import annotations

from types import SimpleNamespace

from benchmark_module import load_benchmark

rd = load_benchmark("rederive_attendnext")


def _cand(index: int, steps: int, acc: float, ms: float, feasible: bool = True) -> SimpleNamespace:
    return SimpleNamespace(index=index, fidelity_steps=steps, accuracy=acc, latency_ms=ms, feasible=feasible)


def test_choice_is_the_fastest_near_the_best_at_the_longest_fidelity() -> None:
    history = [
        _cand(0, 144, 0.70, 9.0),
        _cand(1, 144, 0.69, 6.0),  # within 2 points of the best: eligible, and the fastest
        _cand(2, 144, 0.60, 3.0),  # fast but 10 points worse
        _cand(3, 48, 0.80, 2.0),  # better, but only at a shorter fidelity: not comparable
        _cand(4, 144, 0.75, 5.0, feasible=False),  # breaks a rule
        _cand(5, 144, 0.71, 8.0),
    ]
    chosen, finalists, top = rd.choose(SimpleNamespace(history=history), tolerance=2.0)
    assert (chosen.index, top) == (1, 144)
    assert sorted(c.index for c in finalists) == [0, 1, 2, 5]


def _numbers(ours_ms: float, ours_acc: float) -> dict[str, dict[str, float]]:
    peers = {"mobilenetv3_large": (6.6, 0.50), "fbnet_c": (8.0, 0.35), "mobileone_s1": (12.0, 0.27),
             "mobilevit_xs": (25.0, 0.76)}
    out = {n: {"host_ms": ms, "acc": acc} for n, (ms, acc) in peers.items()}
    out[rd.SEARCHED] = {"host_ms": ours_ms, "acc": ours_acc}
    return out


def test_verdict_meets_the_goal_only_when_every_condition_holds() -> None:
    rows, misses = rd.verdict(_numbers(3.9, 0.77), rd.SEARCHED)
    assert misses == [] and all(r[-1] == "yes" for r in rows)
    rows, misses = rd.verdict(_numbers(5.0, 0.74), rd.SEARCHED)
    assert any("mobilevit_xs" in m and "2.0 points" in m for m in misses)
    assert any("not 2x" in m for m in misses)
    assert rows[-1][-1] == "**no**" and rows[3][-1] == "**no**" and rows[0][-1] == "yes"
