"""The pure half of benchmarks/signal_quality.py: τ_b bookkeeping, the choice rule and the report."""

from __future__ import annotations

import math

import pytest
from benchmark_module import load_benchmark

sq = load_benchmark("signal_quality")

SHORT = ["short:shapes:32:8:s2", "short:shapes:64:8:s2"]
REF = ["ref:shapes:32:128:s0", "ref:shapes:32:128:s1"]
CHECK = "check:digits:32:128:s0"


def _rows(n: int = 8) -> list[dict]:
    """Synthetic designs: reference accuracy rises with i; the 32px short run agrees, the 64px one is reversed."""
    rows = []
    for i in range(n):
        ref = 0.2 + 0.05 * i
        rows.append({
            "name": f"d{i}", "origin": "preset" if i < 6 else "random",
            "params": 1e6 * (n - i), "macs": 1e6 * (i + 1), "latency_ms": 1.0 + i, "measured_ms": 2.0 + i,
            **{k: float(i if k != "synflow" else -i) for k in sq.PROXIES},
            "seconds": {k: 0.1 for k in (*sq.FREE, *sq.PROXIES)},
            "runs": {
                REF[0]: {"acc": ref + (0.01 if i % 2 else -0.01), "seconds": 60.0},
                REF[1]: {"acc": ref, "seconds": 60.0},
                SHORT[0]: {"acc": 0.1 + 0.02 * i, "seconds": 4.0},
                SHORT[1]: {"acc": 0.5 - 0.02 * i, "seconds": 10.0},
                **({CHECK: {"acc": 0.99, "seconds": 50.0}} if i < 6 else {}),
            },
        })
    return rows


META = {"reference": REF, "short": SHORT, "check": CHECK, "long_steps": 128, "seeds": [0, 1], "seed": 0,
        "input": 32, "large_input": 64, "dataset": "shapes", "n_train": 5000, "n_val": 1000, "wall_s": 600.0,
        "command": "python benchmarks/signal_quality.py", "profile_note": "uncalibrated"}


def test_tau_standard_error_matches_the_null_variance() -> None:
    assert sq.tau_se(16) == pytest.approx(math.sqrt(74 / 2160))
    assert math.isnan(sq.tau_se(1))


def test_summary_scores_every_signal_against_the_two_seed_mean() -> None:
    s = sq.summarize(_rows(), META)
    tau = {x["signal"]: x["tau"] for x in s["signals"]}
    assert tau["train shapes 32×32, 8 steps"] == pytest.approx(1.0)
    assert tau["train shapes 64×64, 8 steps"] == pytest.approx(-1.0)
    assert tau["synflow"] == pytest.approx(-1.0) and tau["params"] == pytest.approx(-1.0)
    assert s["reference"][3] == pytest.approx(0.2 + 0.15 + 0.005)
    assert s["ceiling"] == pytest.approx(1.0)  # ±1 point of seed noise never swaps designs 5 points apart
    assert s["seed_gap"] == pytest.approx(0.01)
    assert s["check"]["n"] == 6 and s["check"]["at_least_95"] == 6 and s["check"]["pairs_within_1pt"] == 15


def test_choice_ignores_costs_and_prefers_the_cheapest_near_the_best() -> None:
    s = sq.summarize(_rows(), META)
    pick = sq.choose(s)
    # naswot, grad_norm and snip rank perfectly too and cost 0.1 s; the params/MACs/latency baselines are not eligible
    assert pick["chosen"]["kind"] == "proxy" and pick["chosen"]["tau"] == pytest.approx(1.0)
    assert pick["best"]["tau"] == pytest.approx(1.0)


def test_report_states_the_decisions_from_the_numbers() -> None:
    body = sq.render(_rows(), META)
    assert "Kendall τ_b vs reference (8 designs)" in body
    assert "noise ceiling" in body and "±0.29" in body
    assert "`digits` saturates" in body  # every design at 99 %
    assert "does not rank better for its cost" in body  # 64 px reversed
    assert sum(line.startswith(tuple(f"| d{i} " for i in range(8))) for line in body.splitlines()) == 8


def test_bad_step_lists_exit_with_one_line() -> None:
    with pytest.raises(SystemExit, match="--fidelities 'a,b' is not a comma-separated list"):
        sq.parse_steps("a,b", "--fidelities")
    with pytest.raises(SystemExit, match="at least one step count"):
        sq.parse_steps("0", "--fidelities")
    assert sq.parse_steps("8, 16", "--fidelities") == [8, 16]
