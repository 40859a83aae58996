"""The search tab's callbacks, without a browser; and the tab is wired into the app."""

from __future__ import annotations

import threading

from explorer.analysis import analyze, with_input_size
from explorer.presets import load_preset
from explorer.spec import dump_spec, load_spec, parse_spec_text
from explorer.ui import search_callbacks as sc


def _start() -> str:
    return dump_spec(with_input_size(load_preset("attendnext"), 96))


def test_run_search_reports_the_best_design_and_every_candidate() -> None:
    seen: list[float] = []
    out = sc.run_search(_start(), "params", 5, 4.0, None, None, "host", True, True, seed=2,
                        progress=lambda f, d: seen.append(f))
    best = load_spec(parse_spec_text(out["best_yaml"]))
    assert analyze(best).params <= 4_000_000 and "Best" in out["status"]
    assert len(out["table"]) >= 6 and all(row[5] in ("yes", "no") for row in out["table"])
    assert {t.name for t in out["chart"].data} == {"kept (meets the constraints)", "rejected", "best"}
    assert seen and max(seen) == 1.0
    assert sc.load_best(out["best_yaml"])["editor"] == out["best_yaml"]


def test_bad_inputs_give_a_message_not_a_traceback() -> None:
    assert "Search not run" in sc.run_search("name: [", "macs", 5, None, None, None, "host", False, False)["status"]
    out = sc.run_search(_start(), "macs", 5, 0.001, None, None, "host", False, False)
    assert "relax the constraints" in out["status"] and out["best_yaml"] == ""
    out = sc.run_search(_start(), "latency", 2, None, None, 5.0, "no-such-device", False, False)
    assert "no device profile" in out["status"]
    assert sc.load_best("") == {"status": "Run a search first."}


def test_stop_ends_the_search_early() -> None:
    stop = threading.Event()
    stop.set()
    out = sc.run_search(_start(), "macs", 500, None, None, None, "host", False, False, cancel=stop)
    assert len(out["table"]) == 1  # only the starting design was evaluated


def test_the_app_has_a_search_tab_wired_to_the_editor() -> None:
    from explorer.ui import app

    labels = [label for label, _builder, _editor in app._available_tabs()]
    assert "Search" in labels and dict((l, e) for l, _b, e in app._available_tabs())["Search"] is True
    demo = app.build_app()
    ids = {c.get("props", {}).get("elem_id") for c in demo.config["components"]}
    assert {"search-run", "search-stop", "search-load", "search-chart"} <= ids
