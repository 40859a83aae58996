"""Pin any design as the baseline from its own tab: My designs, Search, History (a stored design or a run's).

Driven as plain functions on a temporary store (no browser): each tab's finder names the design,
``compare_callbacks.on_pin_found`` pins it; the numbers bar's changes are then against that design.
Expected numbers come from ``explorer.analysis``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from explorer.analysis import analyze
from explorer.design import load_design, load_preset
from explorer.spec import dump_spec
from explorer.store import Store
from explorer.ui import callbacks as cb
from explorer.ui import compare_callbacks as cc
from explorer.ui import designs as dc
from explorer.ui import history_callbacks as hc
from explorer.ui import search_callbacks as sc


@pytest.fixture(scope="module")
def start() -> dict:
    return cb.initial_values()


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "pin.sqlite") as s:
        yield s


def _params_change(out: dict) -> int:
    return int(re.search(r'id="baseline-delta-params" data-change="(-?\d+)"', out["baseline_note"]).group(1))


def _expect_pinned(out: dict, preset: str, label: str) -> None:
    """``out`` pinned ``preset`` under ``label``: the baseline, the tab's line, the deltas and the chart."""
    assert out["baseline"] == {"name": label, "yaml": dump_spec(load_preset(preset))}
    assert "Pinned" in out["status"] and label.split(" ")[0] in out["status"]
    current, base = analyze(load_preset("attendnext")), analyze(load_preset(preset))
    assert _params_change(out) == current.params - base.params
    assert out["compare_diff"].startswith(f"--- baseline: {label}")
    assert [t.name for t in out["compare_chart"].data][:2] == [f"baseline: {label}", "design: attendnext"]


def test_pin_a_kept_design_from_my_designs(store: Store, start: dict) -> None:
    design_id = store.keep_design(dump_spec(load_preset("mobilenetv3_small")), "preset")
    found = dc.on_pin_kept_design(design_id, store)
    _expect_pinned(cc.on_pin_found(found, start["spec_yaml"]), "mobilenetv3_small",
                   f"mobilenetv3_small (#{design_id})")
    assert "Pick a design" in cc.on_pin_found(dc.on_pin_kept_design(None, store), start["spec_yaml"])["status"]
    missing = cc.on_pin_found(dc.on_pin_kept_design(999, store), start["spec_yaml"])
    assert missing.keys() == {"status"} and "Cannot pin" in missing["status"] and "no design 999" in missing["status"]


def test_pin_a_stored_design_or_a_runs_design_from_history(store: Store, start: dict) -> None:
    design_id = store.save_design(dump_spec(load_preset("fbnet_c")))
    _expect_pinned(cc.on_pin_found(hc.on_pin_stored_design(design_id, store), start["spec_yaml"]), "fbnet_c",
                   f"fbnet_c (#{design_id})")
    # a run's row picks the design the run was trained from (for Load and Pin), and says which copy it trained
    run_id = store.start_run(design_id, "cifar10", {"input_size": 32, "num_classes": 10})
    picked = hc.on_select_run(run_id, store)
    assert picked["design"] == design_id and f"design #{design_id}" in picked["status"] and "32²" in picked["status"]
    assert "Cannot pick" in hc.on_select_run(12345, store)["status"] and "design" not in hc.on_select_run(12345, store)
    assert "Pick a stored design" in cc.on_pin_found(hc.on_pin_stored_design("", store), start["spec_yaml"])["status"]


def test_pin_a_search_candidate(store: Store, start: dict) -> None:
    base = dump_spec(load_preset("attendnext"))
    sid = store.start_search({}, "accuracy,latency", base)
    meta = {"candidate": 3, "kind": "child", "design_key": "k3", "fidelity_steps": 0, "seed": 0}
    result = {"params": 1, "macs": 1, "peak_activation_bytes": 1, "feasible": True}  # not read by the pin
    store.record_evaluation(sid, 0, dump_spec(load_preset("mobileone_s1")), meta, result, 1.0)
    _expect_pinned(cc.on_pin_found(sc.on_pin_candidate(sid, 3, store), start["spec_yaml"]), "mobileone_s1",
                   f"search {sid}, candidate #3")
    nothing = cc.on_pin_found(sc.on_pin_candidate(sid, 7, store), start["spec_yaml"])
    assert nothing.keys() == {"status"} and "no candidate #7" in nothing["status"]


def test_a_broken_design_is_not_pinned_and_says_why(start: dict) -> None:
    out = cc.on_pin_found({"status": "", "pin_yaml": "name: [unclosed", "pin_label": "x"}, start["spec_yaml"])
    assert out.keys() == {"status"} and out["status"].startswith("**Not pinned:**")
    assert cc.on_pin_found({}, start["spec_yaml"])["status"].startswith("Nothing to pin")


def test_after_a_pin_an_edit_is_compared_with_the_pinned_design(store: Store, start: dict) -> None:
    design_id = store.keep_design(dump_spec(load_preset("mobilenetv3_small")), "search")
    pinned = cc.on_pin_found(dc.on_pin_kept_design(design_id, store), start["spec_yaml"])
    edited = cb.on_mutate("wider", start["spec_yaml"], start["history"], "2:1")
    after = cc.on_compare_refresh(edited["spec_yaml"], pinned["baseline"])
    expected = analyze(load_design(edited["spec_yaml"])).params - analyze(load_preset("mobilenetv3_small")).params
    assert _params_change(after) == expected


def test_every_tab_has_its_pin_button_wired() -> None:
    from explorer.ui.app import build_app

    demo = build_app()
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"my-designs-pin", "search-pin", "hist-pin", "pin-current", "pin-preset"} <= ids
    endpoints = {d.api_name for d in demo.fns.values()}
    assert {"on_pin_kept_design", "on_pin_candidate", "on_pin_stored_design", "on_select_run"} <= endpoints
