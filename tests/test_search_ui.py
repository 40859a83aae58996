"""The search tab's callbacks, without a browser; and the tab is wired into the app."""

from __future__ import annotations

import threading

import pytest

from explorer.analysis import analyze
from explorer.design import load_design, load_preset, retarget
from explorer.spec import dump_spec
from explorer.ui import search_callbacks as sc


def _start() -> str:
    return dump_spec(retarget(load_preset("attendnext"), input_size=96))


def test_run_search_reports_the_best_design_and_every_candidate() -> None:
    seen: list[float] = []
    out = sc.on_search(_start(), "params", 5, 4.0, None, None, "host", True, True, seed=2,
                        progress=lambda f, d: seen.append(f))
    best = load_design(out["best_yaml"])
    assert analyze(best).params <= 4_000_000 and "Best" in out["status"]
    assert len(out["table"]) >= 6 and all(row[5] in ("yes", "no") for row in out["table"])
    assert {t.name for t in out["chart"].data} == {"kept (meets the constraints)", "rejected", "best"}
    assert seen and max(seen) == 1.0
    assert sc.on_load_best(out["best_yaml"])["editor"] == out["best_yaml"]


@pytest.mark.slow
def test_bad_inputs_give_a_message_not_a_traceback() -> None:
    assert "Search not run" in sc.on_search("name: [", "macs", 5, None, None, None, "host", False, False)["status"]
    out = sc.on_search(_start(), "macs", 5, 0.001, None, None, "host", False, False)
    assert "relax the constraints" in out["status"] and out["best_yaml"] == ""
    out = sc.on_search(_start(), "latency", 2, None, None, 5.0, "no-such-device", False, False)
    assert "no device profile" in out["status"]
    assert sc.on_load_best("") == {"status": "Run a search first."}


def test_stop_ends_the_search_early() -> None:
    stop = threading.Event()
    stop.set()
    out = sc.on_search(_start(), "macs", 500, None, None, None, "host", False, False, cancel=stop)
    assert len(out["table"]) == 1  # only the starting design was evaluated


def test_the_app_has_a_search_tab_wired_to_the_editor() -> None:
    from explorer.ui import app

    demo = app.build_app()
    components = demo.config["components"]
    ids = {c.get("props", {}).get("elem_id") for c in components}
    assert {"search-run", "search-stop", "search-load", "search-chart"} <= ids
    labels = {c.get("props", {}).get("label") for c in components if c.get("type") == "tabitem"}
    assert "Search" in labels
    # "Load the best design" writes into the Design tab's YAML editor
    editor = next(c["id"] for c in components if c.get("props", {}).get("elem_id") == "yaml-editor")
    load = next(d for d in demo.config["dependencies"] if d["api_name"] == "on_load_best")
    assert editor in load["outputs"]
