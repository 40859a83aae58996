"""The design search: constraints hold, Pareto selection and successive halving do what they say, the
front and its hypervolume are recorded, a search resumes without evaluating anything twice (even after
SIGKILL), latency measurements are cached, and the command keeps its contract."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from explorer.analysis import analyze
from explorer.cli import main
from explorer.design import load_design, load_preset, retarget
from explorer.pareto import pareto_front
from explorer.search import (
    Constraints,
    EvalJob,
    InProcessExecutor,
    LatencySettings,
    MemoryJournal,
    ProxyTask,
    ReplayError,
    evaluate_candidate,
    parse_objectives,
    resume_search,
    run_search,
    search,
    search_config,
    violations,
)
from explorer.search import evaluate as evaluate_module
from explorer.spec import ArchitectureSpec, dump_spec
from explorer.store import Store

from tiny_designs import tiny_design

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base() -> ArchitectureSpec:
    return retarget(load_preset("attendnext"), input_size=96)


@pytest.fixture(scope="module")
def tiny() -> ArchitectureSpec:
    return load_design(tiny_design(stem_stride=2))


class FakeTraining:
    """``evaluate_candidate`` with the real free signals but a made-up, deterministic accuracy (no training):
    more parameters and more steps score higher. Counts every evaluation it runs."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, job: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((job["seq"], job["fidelity_steps"]))
        result = evaluate_candidate({**job, "fidelity_steps": 0})
        result["fidelity_steps"] = steps = job["fidelity_steps"]
        if result["feasible"] and steps:
            result["accuracy"] = min(0.99, result["params"] / (result["params"] + 4000) + 0.05 * math.log2(steps))
        return result


# ----------------------------------------------------------------------------- constraints (cost-only)


def test_search_keeps_only_feasible_designs_and_improves_the_objective(base: ArchitectureSpec) -> None:
    budget = Constraints(max_params=3_800_000, antialias_downsampling=True, condensers_early=True)
    result = search(base, budget, "macs", steps=12, population=6, sample=3, seed=1)
    start = result.history[0]
    assert not start.feasible and "params 3.983 M > 3.800 M" in start.reasons  # AttendNeXt itself is over budget
    assert result.best.feasible and result.best.params <= 3_800_000
    for cand in result.history:  # every verdict is recomputed from the stored YAML
        spec = load_design(cand.spec_yaml)
        assert cand.feasible == (not violations(spec, analyze(spec), budget))
    assert result.best.macs == min(c.macs for c in result.history if c.feasible)
    assert result.pareto == [result.best.index]  # one objective: the front is the best


def test_search_is_deterministic_for_a_seed(tiny: ArchitectureSpec) -> None:
    a = search(tiny, Constraints(), "macs,params", steps=8, population=4, sample=2, seed=3)
    b = search(tiny, Constraints(), "macs,params", steps=8, population=4, sample=2, seed=3)
    assert [c.spec_yaml for c in a.history] == [c.spec_yaml for c in b.history] and a.pareto == b.pareto


def test_best_practice_rules_are_checked(base: ArchitectureSpec) -> None:
    a = analyze(base)
    assert violations(base, a, Constraints(antialias_downsampling=True, condensers_early=True)) == []
    plain = load_preset("mobilenetv3_small")
    reasons = violations(plain, analyze(plain), Constraints(antialias_downsampling=True, condensers_early=True))
    assert any("without anti-aliasing" in r for r in reasons)
    assert "no attention condenser in the first half of the stages" in reasons


def test_impossible_budget_and_cancel(tiny: ArchitectureSpec) -> None:
    with pytest.raises(ValueError, match="relax the constraints"):
        search(tiny, Constraints(max_params=100), "macs", steps=2, population=2, sample=1)
    stop = threading.Event()
    stop.set()
    result = search(tiny, Constraints(), "macs,params", steps=50, population=3, sample=1, cancel=stop)
    assert len(result.history) == 1 and result.best.step == 0 and result.status == "stopped"


def test_a_budget_in_minutes_ends_the_search(tiny: ArchitectureSpec) -> None:
    started = time.monotonic()
    result = search(tiny, Constraints(), "macs,params", steps=None, budget_minutes=0.02, population=3, sample=2)
    took = time.monotonic() - started
    assert result.status == "finished" and 1 < len(result.history) < 10_000
    assert took < 0.02 * 60 + 5  # no new evaluation starts once the budget is spent


def test_objectives_are_checked() -> None:
    assert parse_objectives("accuracy, latency") == ("accuracy", "latency")
    for bad, message in (("beauty", "unknown objective 'beauty'"), ("macs,macs", "listed twice"),
                         ("accuracy,latency,macs,params", "at most three"), ("", "no objective")):
        with pytest.raises(ValueError, match=message):
            parse_objectives(bad)


# ----------------------------------------------------------------------------- Pareto selection, front, hypervolume


def test_front_and_hypervolume_are_recorded_every_generation(tiny: ArchitectureSpec) -> None:
    result = search(tiny, Constraints(), "macs,params", steps=20, population=5, sample=3, seed=4)
    assert len(result.fronts) == len(result.history) == result.evaluations == 21  # start + 20 children, in process
    feasible = [c for c in result.history if c.feasible]
    points = [[c.macs, c.params] for c in feasible]
    assert sorted(result.pareto) == sorted(feasible[i].index for i in pareto_front(points, [False, False]))
    curve = [f.hypervolume for f in result.fronts]
    assert all(b >= a - 1e-12 for a, b in zip(curve, curve[1:], strict=False))  # the front only improves
    assert 0 < curve[-1] <= 1 and curve[-1] > curve[0]
    start = result.history[0]  # no budgets: the box is (0, 2 × the start) on each cost
    assert result.bounds == [(0.0, 2.0 * start.macs), (0.0, 2.0 * start.params)]
    assert result.pareto[0] == result.best.index  # the front is listed best first in the first objective


def test_successive_halving_promotes_only_the_top_of_each_rung(tiny: ArchitectureSpec) -> None:
    fake = FakeTraining()
    task = ProxyTask(steps=2, eta=3, rungs=3)
    config = search_config(tiny, "accuracy,params", task=task, steps=24, population=6, sample=3, seed=5)
    result = run_search(config, executor=InProcessExecutor(fake))
    ladder = task.rung_steps()
    assert ladder == [2, 6, 18]
    per_rung = Counter(steps for _, steps in fake.calls)
    children = per_rung[2]
    assert children == 25  # the start and every child get the cheapest rung
    assert 0 < per_rung[6] <= children // 3 and 0 < per_rung[18] <= per_rung[6] // 3
    assert sum(per_rung.values()) == result.evaluations
    for c in result.history:  # a candidate's accuracy is its highest rung's, and says which rung
        assert c.accuracies and c.fidelity_steps == max(c.accuracies) and c.accuracy == c.accuracies[c.fidelity_steps]
    top = max(result.history, key=lambda c: c.fidelity_steps)
    assert top.fidelity_steps == 18 and set(top.accuracies) == {2, 6, 18}


def test_evaluation_is_a_pure_function_of_plain_data(tiny: ArchitectureSpec) -> None:
    job = EvalJob(seq=3, spec=tiny.to_dict(), constraints=Constraints(max_params=1000),
                  latency=LatencySettings(), full=True).model_dump()
    first = evaluate_candidate(json.loads(json.dumps(job)))  # survives a JSON round trip (another process)
    second = evaluate_candidate(job)
    assert json.loads(json.dumps(first)) == first
    assert {k: v for k, v in first.items() if k != "seconds"} == {k: v for k, v in second.items() if k != "seconds"}
    assert first["seq"] == 3 and not first["feasible"] and first["reasons"][0].startswith("params")
    assert first["latency_ms"] > 0  # the start (full=True) is timed even over budget, for the hypervolume box


# ----------------------------------------------------------------------------- nothing lost


def test_resume_evaluates_nothing_twice_and_ends_where_an_uninterrupted_search_ends(
        tiny: ArchitectureSpec, tmp_path: Path) -> None:
    task = ProxyTask(steps=2, eta=3, rungs=2)
    config = search_config(tiny, "accuracy,macs", task=task, steps=10, population=4, sample=2, seed=6)
    whole = run_search(config, executor=InProcessExecutor(FakeTraining()))

    stop = threading.Event()
    first = FakeTraining()
    with Store(tmp_path / "s.sqlite") as store:
        from explorer.search import StoreJournal

        journal = StoreJournal.start(store, config)
        partial = run_search(config, executor=InProcessExecutor(first), journal=journal, cancel=stop,
                             progress=lambda done, total, msg: stop.set() if done >= 5 else None)
        assert partial.status == "stopped" and store.get_search(partial.search_id or 0)["status"] == "stopped"
        second = FakeTraining()
        resumed = resume_search(store, partial.search_id or 0, executor=InProcessExecutor(second))
        rows = store.search_evaluations(partial.search_id or 0)
    assert resumed.status == "finished" and resumed.replayed == len(first.calls)
    assert not {seq for seq, _ in first.calls} & {seq for seq, _ in second.calls}  # nothing evaluated twice
    assert len(first.calls) + len(second.calls) == resumed.evaluations == len(rows) == whole.evaluations
    assert [r["seq"] for r in rows] == list(range(len(rows)))
    assert [c.model_dump(exclude={"seconds", "worker"}) for c in resumed.history] == \
        [c.model_dump(exclude={"seconds", "worker"}) for c in whole.history]
    assert resumed.pareto == whole.pareto and resumed.fronts[-1].hypervolume == whole.fronts[-1].hypervolume


def test_a_stored_search_that_no_longer_replays_is_refused(tiny: ArchitectureSpec) -> None:
    journal = MemoryJournal()
    config = search_config(tiny, "macs,params", steps=3, population=2, sample=1, seed=1)
    run_search(config, journal=journal)
    journal.records[2]["design_key"] = "something else"
    with pytest.raises(ReplayError, match="start a new search"):
        run_search(config, journal=journal)


@pytest.mark.slow
def test_sigkill_mid_search_then_resume(tiny: ArchitectureSpec, tmp_path: Path) -> None:
    """A search process killed with SIGKILL leaves every finished evaluation; --resume evaluates only the rest."""
    spec_file, db = tmp_path / "tiny.yaml", tmp_path / "s.sqlite"
    spec_file.write_text(dump_spec(tiny))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "explorer", "search", str(spec_file), "--objectives", "macs,params",
            "--steps", "40", "--population", "5", "--seed", "7", "--db", str(db)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=5) as conn:
                    done = conn.execute("SELECT count(*) FROM candidates").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if done >= 6:
                break
    assert proc.poll() is None, f"the search ended before it could be killed: {proc.stderr.read().decode()[-300:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT seq, json, worker FROM candidates ORDER BY seq").fetchall()
    listed = subprocess.run([sys.executable, "-m", "explorer", "searches", "--json", "--db", str(db)], env=env,
                            capture_output=True, text=True, check=True)
    assert json.loads(listed.stdout)[0]["status"] == "interrupted"

    out = subprocess.run([sys.executable, "-m", "explorer", "search", "--resume", "1", "--db", str(db), "--json"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    with sqlite3.connect(db) as conn:
        after = conn.execute("SELECT seq, json, worker FROM candidates ORDER BY seq").fetchall()
        keys = conn.execute("SELECT design_key, fidelity_steps FROM candidates").fetchall()
        status = conn.execute("SELECT status FROM searches WHERE id = 1").fetchone()[0]
    assert after[: len(before)] == before  # what the killed process committed is untouched
    assert {w for _, _, w in after[len(before):]}.isdisjoint({w for _, _, w in before})  # the rest: the new process
    assert len(keys) == len(set(keys)) == len(result["candidates"]) == 41  # nothing evaluated twice; all 40 children
    assert status == "finished" and result["search_id"] == 1
    uninterrupted = search(tiny, Constraints(), "macs,params", steps=40, population=5, sample=4, seed=7)
    assert [c["spec_yaml"] for c in result["candidates"]] == [c.spec_yaml for c in uninterrupted.history]


def test_latency_measurements_are_cached_and_never_repeated(tiny: ArchitectureSpec, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    measured: list[str] = []

    def fake_measure(spec: ArchitectureSpec, settings: LatencySettings) -> tuple[float, dict[str, Any]]:
        measured.append(dump_spec(spec))
        ms = analyze(spec).macs / 1e5
        return ms, {"median_ms": ms, "p90_ms": ms, "cv": 0.0, **settings.cache_key()}

    monkeypatch.setattr(evaluate_module, "_latency", fake_measure)
    settings = LatencySettings(mode="local")
    with Store(tmp_path / "s.sqlite") as store:
        first = search(tiny, Constraints(), "latency,params", steps=6, population=3, sample=2, seed=2,
                       latency=settings, store=store)
        n = len(measured)
        assert n == len(first.history) and len(store.list_latency()) == n
        again = search(tiny, Constraints(), "latency,params", steps=6, population=3, sample=2, seed=2,
                       latency=settings, store=store)  # the same designs: every latency from the store
        assert len(measured) == n and [c.latency_ms for c in again.history] == [c.latency_ms for c in first.history]
        other = search(tiny, Constraints(), "latency,params", steps=6, population=3, sample=2, seed=2,
                       latency=settings.model_copy(update={"threads": 2}), store=store)  # other settings: measured
        assert len(measured) == 2 * n and len(other.history) == n


@pytest.mark.slow
def test_latency_measured_here_and_on_a_board_is_stored_once(tiny: ArchitectureSpec, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from test_agent import TOKEN, start_agent, stop

    spec_file, db = tmp_path / "tiny.yaml", tmp_path / "s.sqlite"
    spec_file.write_text(dump_spec(tiny))
    proc, url = start_agent(tmp_path / "agent.log")
    try:
        for where in (["--measure", "local"], ["--remote", url, "--token", TOKEN]):
            for _ in range(2):  # the second search proposes the same designs: nothing is measured again
                assert main(["search", str(spec_file), "--objectives", "latency,params", "--steps", "3",
                             "--population", "2", *where, "--db", str(db), "--json"]) == 0
                out = json.loads(capsys.readouterr().out)
                assert all(c["latency_ms"] > 0 for c in out["candidates"])
    finally:
        stop(proc)
    with Store(db) as store:
        rows = store.list_latency()
    assert Counter(r["backend"] for r in rows) == {"onnxruntime-cpu": 4, "agent": 4}  # 4 designs, once per place


def test_proxy_training_gives_the_accuracy_objective(tiny: ArchitectureSpec) -> None:
    task = ProxyTask(input_size=16, steps=2, eta=2, rungs=2, batch_size=16)
    result = search(tiny, Constraints(), "accuracy,params", steps=2, population=2, sample=1, seed=1, task=task)
    assert all(c.feasible and 0 <= (c.accuracy or 0) <= 1 and c.fidelity_steps in (2, 4) for c in result.history)
    assert result.pareto and result.best.accuracy == max(c.accuracy or 0 for c in result.history)


# ----------------------------------------------------------------------------- the command


def test_search_command(tiny: ArchitectureSpec, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_file, out, db = tmp_path / "tiny.yaml", tmp_path / "best.yaml", tmp_path / "s.sqlite"
    spec_file.write_text(dump_spec(tiny))
    assert main(["search", str(spec_file), "--objectives", "macs,params", "--steps", "4", "--population", "3",
                 "--max-params", "0.01", "--db", str(db), "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"search_id", "objectives", "candidates", "pareto"} <= set(summary)
    keys = {"name", "params", "macs", "latency_ms", "accuracy", "fidelity_steps", "feasible", "reasons", "spec_yaml"}
    assert all(keys <= set(c) for c in summary["candidates"]) and len(summary["candidates"]) == 5
    best = summary["candidates"][summary["pareto"][0]]
    assert best["params"] <= 10_000 and analyze(load_design(out)).params == best["params"]
    assert yaml.safe_load(out.read_text())["name"] == best["name"]
    assert main(["searches", "--db", str(db), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["search_id"] == summary["search_id"] and listed[0]["status"] == "finished"
    assert listed[0]["counts"]["candidates"] == 5 and listed[0]["objectives"] == ["macs", "params"]
    assert main(["search", "--resume", str(summary["search_id"]), "--steps", "6", "--db", str(db), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["candidates"]) == 7  # extended by two children


@pytest.mark.parametrize("args,message", [
    (["attendnext", "--objectives", "beauty"], "unknown objective 'beauty'"),
    (["attendnext", "--objective", "beauty"], "unknown objective 'beauty'"),
    (["attendnext", "--steps", "0"], "--steps 0 is out of range"),
    (["attendnext", "--steps", "3", "--budget-minutes", "1"], "not allowed with argument"),
    (["attendnext", "--device", "host", "--measure", "local"], "not allowed with argument"),
    (["attendnext", "--remote", "http://127.0.0.1:9"], "--remote needs --token"),
    (["attendnext", "--max-macs", "0"], "--max-macs 0 must be above 0"),
    (["attendnext", "--input", "4"], "--input 4 is out of range"),
    (["attendnext", "--train-steps", "1000", "--rungs", "6", "--eta", "10"], "the top rung would train"),
    (["--objectives", "macs"], "give the starting design SPEC"),
    (["--resume", "1", "--seed", "3"], "drop --seed"),
    (["attendnext", "--dataset", "/no/such/folder", "--objectives", "accuracy,macs"], "no dataset"),
    (["attendnext", "--device", "no-such-device", "--objectives", "latency,macs"], "no device profile"),
])
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", *args, "--db", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
