"""The search tab's callbacks, without a browser: a background search with progress, stop and resume,
the live front, loading a candidate into the editor, and the searches in History.

Every search here is tiny: the 16×16 design of ``tiny_designs`` with the free signals and one rung of
one training step. Where a test must see a search mid-run, its evaluations pass a gate the test opens
one at a time, so what it sees does not depend on the machine's speed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest

from explorer.design import load_design
from explorer.search import Constraints, InProcessExecutor, evaluate_candidate, search
from explorer.search.view import stored_view
from explorer.spec import dump_spec
from explorer.store import Store
from explorer.ui import callbacks as cb
from explorer.ui import search_callbacks as sc
from explorer.ui import search_runner as runner

from tiny_designs import tiny_design

TINY = dump_spec(load_design(tiny_design(stem_stride=2)))


def form(budget: Any = 4, objectives: tuple[str, ...] = ("accuracy", "params"), **changes: Any) -> list[Any]:
    """The tab's form (``parse_settings``' arguments in order) for a tiny search."""
    values = dict(objectives=list(objectives), max_params_m=None, max_gmacs=None, max_peak_mib=None,
                  max_latency_ms=None, latency_source="predict", device="host", antialias=False,
                  condensers_early=False, dataset="digits", input_size=16, train_steps=1, rungs=1, eta=3,
                  budget_kind="candidates", budget=budget, seed=1, presets=False)
    values.update(changes)
    return list(values.values())


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "s.sqlite") as s:
        yield s


@pytest.fixture()
def session(request: pytest.FixtureRequest) -> Iterator[str]:
    key = f"test-{request.node.name}-{time.monotonic_ns()}"
    yield key
    runner.stop(key)
    runner.wait(key, 60)


class Gate:
    """Evaluations wait here until the test lets them through (``open(n)``); counts what it evaluated."""

    def __init__(self) -> None:
        self.sem = threading.Semaphore(0)
        self.evaluated = 0

    def open(self, n: int = 1000) -> None:
        for _ in range(n):
            self.sem.release()

    def evaluate(self, job: dict[str, Any]) -> dict[str, Any]:
        assert self.sem.acquire(timeout=60), "the test never opened the gate"
        self.evaluated += 1
        return evaluate_candidate(job)


@pytest.fixture()
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    """The runner's searches (new and resumed) evaluate through a gate."""
    g = Gate()

    def gated(fn: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *a, **k: fn(*a, executor=InProcessExecutor(g.evaluate), **k)

    monkeypatch.setattr(runner, "search", gated(runner.search))
    monkeypatch.setattr(runner, "resume_search", gated(runner.resume_search))
    return g


def until(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    end = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


def poll_to_end(session: str, store: Store) -> dict[str, Any]:
    """Poll as the page's timer does until it turns itself off; the last answer with charts merged in."""
    merged: dict[str, Any] = {}
    for _ in range(3000):
        out = sc.on_poll_search(session, store=store)
        merged.update(out)
        if not out["polling"]:
            return merged
        time.sleep(0.05)
    raise AssertionError("the search did not end")


def front_points(fig: Any) -> int:
    return sum(len(t.x or ()) for t in fig.data if str(t.name).startswith("front"))


def test_start_progress_finish_with_a_front(store: Store, session: str, gate: Gate) -> None:
    started = sc.on_start_search(TINY, *form(budget=4), session=session, store=store)
    assert started["polling"] is True and "running" in started["progress"]
    gate.open(3)  # the start and two children
    until(lambda: (runner.current(session) or runner.SearchJob(session, "new")).done >= 2)
    mid = sc.on_poll_search(session, store=store)
    assert mid["polling"] is True and "2 / 4 candidates" in mid["progress"] and "ETA" in mid["progress"]
    assert mid["search_id"] is not None and front_points(mid["front_chart"]) >= 1  # the live front, mid-run
    gate.open()
    end = poll_to_end(session, store)
    assert "finished" in end["progress"] and "front of" in end["progress"]
    view = stored_view(store, end["search_id"])
    assert sum(c.kind == "child" for c in view.candidates) == 4 and view.status == "finished"
    assert front_points(end["front_chart"]) == len(view.front) == len(end["front_table"]) >= 1
    assert len(end["hv_chart"].data[0].y) == view.evaluations  # one hypervolume point per evaluation
    assert [i for _, i in end["pick"]["choices"]][: len(view.front)] == view.front


def test_stop_then_resume_evaluates_no_stored_candidate_again(store: Store, session: str, gate: Gate) -> None:
    sc.on_start_search(TINY, *form(budget=6), session=session, store=store)
    gate.open(3)
    until(lambda: gate.evaluated == 3)
    stopping = sc.on_stop_search(session)
    assert "stopping" in stopping["progress"]
    gate.open(1)  # the evaluation under way (if any) finishes; then the search stops
    stopped = poll_to_end(session, store)
    assert "stopped" in stopped["progress"] and "Resume" in stopped["progress"]
    sid = stopped["search_id"]
    assert store.get_search(sid)["status"] == "stopped"
    before = len(store.search_evaluations(sid))
    evaluated_before = gate.evaluated
    assert before == evaluated_before
    resumed = sc.on_resume_search(sid, session=session, store=store)
    assert resumed["polling"] is True and resumed["search_id"] == sid
    # while it runs, another page cannot resume it, and this page cannot start a second search
    assert "is running in another page" in sc.on_resume_search(sid, session=session + "-b", store=store)["progress"]
    assert "already running in this page" in sc.on_start_search(TINY, *form(), session=session,
                                                                store=store)["progress"]
    gate.open()
    end = poll_to_end(session, store)
    assert "finished" in end["progress"] and f"{before} from the store" in end["progress"]
    rows = store.search_evaluations(sid)
    assert gate.evaluated - evaluated_before == len(rows) - before  # nothing stored was evaluated again
    assert sorted(r["seq"] for r in rows) == list(range(len(rows)))
    assert sum(r["kind"] == "child" for r in rows) == 6 and store.get_search(sid)["status"] == "finished"


def test_an_empty_budget_is_no_limit_and_bad_numbers_get_one_line(store: Store, session: str) -> None:
    s = sc.parse_settings(*form(max_params_m=None, max_gmacs="", max_peak_mib=None, max_latency_ms=""))
    c = s.constraints
    assert (c.max_params, c.max_macs, c.max_peak_activation_bytes, c.max_latency_ms) == (None, None, None, None)
    s = sc.parse_settings(*form(max_params_m=2.5, max_latency_ms=7))
    assert s.constraints.max_params == 2_500_000 and s.constraints.max_latency_ms == 7.0
    for changes, words in (
        (dict(max_params_m=0), "max params (M) 0 is out of range; use a number above 0 to 10000; leave it empty"),
        (dict(max_gmacs=-1), "max GMACs -1 is out of range"),
        (dict(max_latency_ms="fast"), "max latency (ms) 'fast' is not a number"),
        (dict(objectives=["accuracy"]), "1 objective(s) ticked; tick two or three"),
        (dict(budget=0), "budget (candidates) 0 is out of range; use a number from 1"),
        (dict(budget_kind="minutes", budget=0), "budget (minutes) 0 is out of range"),
        (dict(train_steps=1.5), "training steps (cheapest rung) 1.5 must be a whole number"),
        (dict(input_size=4), "proxy input size 4 is out of range"),
        (dict(dataset="/etc"), "proxy dataset '/etc': pick one of"),
    ):
        with pytest.raises(ValueError, match="^" + words.replace("(", r"\(").replace(")", r"\)")):
            sc.parse_settings(*form(**changes))
        out = sc.on_start_search(TINY, *form(**changes), session=session, store=store)
        assert out["polling"] is False and "Search not started" in out["progress"] and "\n" not in out["progress"]
    assert runner.current(session) is None  # nothing was started
    bad = sc.on_start_search("name: [", *form(), session=session, store=store)
    assert "Search not started" in bad["progress"]


def test_a_new_search_clears_the_previous_chart(store: Store, session: str) -> None:
    sc.on_start_search(TINY, *form(budget=2, objectives=("macs", "params")), session=session, store=store)
    first = poll_to_end(session, store)
    assert front_points(first["front_chart"]) >= 1
    again = sc.on_start_search(TINY, *form(budget=2, objectives=("macs", "params"), seed=2), session=session,
                               store=store)
    assert all(len(t.x or ()) == 0 for t in again["front_chart"].data)  # cleared at once
    assert again["front_table"] == [] and again["pick"]["choices"] == [] and len(again["hv_chart"].data[0].y) == 0
    second = poll_to_end(session, store)
    assert second["search_id"] != first["search_id"]
    assert front_points(second["front_chart"]) == len(stored_view(store, second["search_id"]).front)


def test_loading_a_candidate_sets_the_design(store: Store, session: str) -> None:
    sc.on_start_search(TINY, *form(budget=3, objectives=("macs", "params")), session=session, store=store)
    end = poll_to_end(session, store)
    sid, index = end["search_id"], end["pick"]["choices"][-1][1]
    out = sc.on_load_candidate(sid, index, store=store)
    assert f"candidate #{index} of search {sid}" in out["status"]
    design = load_design(out["editor"])
    assert design.name.endswith(f"-{index}") or index == 0
    # the editor's change event (the Design tab's one way in from another tab) makes it the design
    applied = cb.on_editor_change(out["editor"], TINY, None, None)
    assert applied["spec_yaml"] == dump_spec(design)
    assert sc.on_load_candidate(sid, 999, store=store)["status"].startswith(f"search {sid} has no candidate #999")
    assert "Pick a candidate first" in sc.on_load_candidate(None, None, store=store)["status"]


def test_searches_and_their_candidates_in_history(store: Store, session: str) -> None:
    sc.on_start_search(TINY, *form(budget=3, objectives=("macs", "params")), session=session, store=store)
    sid = poll_to_end(session, store)["search_id"]
    listed = sc.on_refresh_searches(store=store)
    row = next(r for r in listed["searches_table"] if r[0] == sid)
    assert row[2] == "finished" and row[3] == "macs,params" and row[4] == 4  # start + 3 children
    assert sid in [v for _, v in listed["search_choices"]]
    picked = sc.on_pick_search(sid, store=store)
    assert len(picked["candidates_table"]) == 4 and f"Search #{sid}" in picked["status"]
    assert front_points(picked["front_chart"]) == len(picked["front_table"]) >= 1
    for fig in (picked["front_chart"], picked["hv_chart"]):  # the UI skips plotly's validation; check here
        go.Figure(fig.to_dict())
    assert "Cannot show it" in sc.on_pick_search(12345, store=store)["status"]


def test_the_stored_view_is_the_engines_front_and_hypervolume(store: Store) -> None:
    tiny = load_design(tiny_design(stem_stride=2))
    result = search(tiny, Constraints(), "macs,params", steps=20, population=5, sample=3, seed=4, store=store)
    view = stored_view(store, result.search_id or 0)
    assert set(view.front) == set(result.pareto)
    assert view.hypervolume == pytest.approx([f.hypervolume for f in result.fronts])
    assert [c.index for c in view.candidates] == [c.index for c in result.history]
    assert [c.feasible for c in view.candidates] == [c.feasible for c in result.history]


def test_preset_references_use_the_same_signals_and_are_computed_once(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake(job: Any) -> dict[str, Any]:  # the real free signals; a stand-in for the (slow) training
        calls.append(job.fidelity_steps)
        if job.fidelity_steps:
            return {"accuracy": 0.5}
        return evaluate_candidate(job)

    monkeypatch.setattr(runner, "evaluate_candidate", fake)
    monkeypatch.setattr(runner, "list_presets", lambda: ["mobilenetv3_small", "attendnext"])
    monkeypatch.setattr(runner, "_REFERENCES", {})
    monkeypatch.setattr(runner, "_ACCURACY_FILES", {})
    settings = sc.parse_settings(*form(objectives=("accuracy", "latency")))
    cache = tmp_path / "refs.json"
    refs = runner.preset_references(settings, cache_file=cache)
    assert [r.name for r in refs] == ["mobilenetv3_small", "attendnext"]
    assert all(r.record["accuracy"] == 0.5 and r.record["latency_ms"] > 0 for r in refs)
    first = len(calls)
    assert runner.preset_references(settings, cache_file=cache) == refs and len(calls) == first  # cached
    monkeypatch.setattr(runner, "_ACCURACY_FILES", {})  # a new server process: the accuracies come from disk
    assert runner.preset_references(settings, cache_file=cache) == refs and 1 not in calls[first:]


def test_the_app_has_a_search_tab_wired_to_the_editor() -> None:
    from explorer.ui import app

    demo = app.build_app()
    components = demo.config["components"]
    ids = {c.get("props", {}).get("elem_id") for c in components}
    assert {"search-run", "search-stop", "search-resume", "search-load", "search-front", "search-hv",
            "search-front-table", "search-pick", "hist-searches", "hist-search-load"} <= ids
    labels = {c.get("props", {}).get("label") for c in components if c.get("type") == "tabitem"}
    assert "Search" in labels
    editor = next(c["id"] for c in components if c.get("props", {}).get("elem_id") == "yaml-editor")
    for endpoint in ("on_load_candidate", "on_select_front_row", "on_load_stored_candidate"):
        dep = next(d for d in demo.config["dependencies"] if d["api_name"] == endpoint)
        assert editor in dep["outputs"]
    budgets = [c["props"] for c in components if c.get("props", {}).get("elem_id") in (
        "search-max-params", "search-max-macs", "search-max-peak", "search-max-latency")]
    assert len(budgets) == 4 and all(p.get("value") == "" and p["placeholder"] == "no limit" for p in budgets)
