"""Constraint-guided search: budgets and best-practice rules hold for every design it keeps."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from explorer.analysis import analyze
from explorer.cli import main
from explorer.design import load_design, load_preset, retarget
from explorer.search import Constraints, search, violations
from explorer.spec import ArchitectureSpec


@pytest.fixture(scope="module")
def base() -> ArchitectureSpec:
    return retarget(load_preset("attendnext"), input_size=96)


def test_search_keeps_only_feasible_designs_and_improves_the_objective(base: ArchitectureSpec) -> None:
    budget = Constraints(max_params=3_800_000, antialias_downsampling=True, condensers_early=True)
    result = search(base, budget, objective="macs", steps=12, population=6, sample=3, seed=1)
    start = result.history[0]
    assert not start.feasible and "params 3.983 M > 3.800 M" in start.reasons  # AttendNeXt itself is over budget
    assert result.best.feasible and result.best.params <= 3_800_000
    for cand in result.history:  # every verdict is recomputed from the stored YAML
        spec = load_design(cand.spec_yaml)
        assert cand.feasible == (not violations(spec, analyze(spec), budget))
    assert result.best.score == max(c.score for c in result.history if c.feasible) == -result.best.macs


def test_search_is_deterministic_for_a_seed(base: ArchitectureSpec) -> None:
    budget = Constraints(max_macs=60_000_000)
    a = search(base, budget, steps=6, population=4, sample=2, seed=3)
    b = search(base, budget, steps=6, population=4, sample=2, seed=3)
    assert [c.spec_yaml for c in a.history] == [c.spec_yaml for c in b.history]


def test_best_practice_rules_are_checked(base: ArchitectureSpec) -> None:
    a = analyze(base)
    assert violations(base, a, Constraints(antialias_downsampling=True, condensers_early=True)) == []
    plain = load_preset("mobilenetv3_small")
    reasons = violations(plain, analyze(plain), Constraints(antialias_downsampling=True, condensers_early=True))
    assert any("without anti-aliasing" in r for r in reasons)
    assert "no attention condenser in the first half of the stages" in reasons


def test_impossible_budget_and_cancel(base: ArchitectureSpec) -> None:
    with pytest.raises(ValueError, match="relax the constraints"):
        search(base, Constraints(max_params=1000), steps=2, population=2, sample=1)
    stop = threading.Event()
    stop.set()
    result = search(base, Constraints(), steps=50, population=3, sample=1, cancel=stop)
    assert len(result.history) == 1 and result.best.step == 0  # cancelled before any step: the start stands


def test_search_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "best.yaml"
    assert main(["search", "attendnext", "--input", "96", "--steps", "4", "--population", "3", "--sample", "2",
                 "--max-params", "4.5", "--antialias", "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["best"]["params"] <= 4_500_000 and analyze(load_design(out)).params == summary["best"]["params"]
    assert main(["search", "attendnext", "--objective", "beauty", "--steps", "1"]) == 2
    assert "unknown objective" in capsys.readouterr().err
