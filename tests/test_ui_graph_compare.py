"""The graph view and the compare panel, driven as plain callbacks (no browser)."""

from __future__ import annotations

import json
import re

import pytest

from explorer.analysis import analyze
from explorer.charts import compare_stages_figure
from explorer.compare import stage_totals, total_deltas, yaml_diff
from explorer.design import load_preset
from explorer.design_warnings import DesignWarning
from explorer.mutate import apply_mutation
from explorer.spec import SpecError, dump_spec
from explorer.ui import callbacks as cb
from explorer.ui import compare_callbacks as cc
from explorer.ui.graph_callbacks import on_select_graph_node
from explorer.ui.graph_view import graph_value, warnings_html


@pytest.fixture(scope="module")
def start() -> dict:
    return cb.initial_values()


def test_every_page_carries_the_graph_and_the_analyzer(start: dict) -> None:
    graph = json.loads(start["graph"])
    spec = load_preset("attendnext")
    assert graph["name"] == "attendnext" and graph["selected"] == "1:1"
    assert len([n for n in graph["nodes"] if n["kind"] == "unit"]) == len(analyze(spec).blocks)
    assert "Analyzer: 1 warning" in start["warnings"] and "embed_ratio" in start["warnings"]
    # the layout key follows the structure only: another selection keeps it (the page only moves the highlight)
    other = json.loads(graph_value(spec, analyze(spec), "2:3"))
    assert other["layout_key"] == graph["layout_key"] and other["selected"] == "2:3"
    # a wider stage: new labels on the same nodes and edges, so the same layout (the page relabels in place)
    wider = apply_mutation(spec, "wider", 2)
    widened = json.loads(graph_value(wider, analyze(wider), "2:3"))
    assert widened["layout_key"] == graph["layout_key"]
    assert [n["label"] for n in widened["nodes"]] != [n["label"] for n in graph["nodes"]]
    deeper = apply_mutation(spec, "deeper", 2, 1)  # one more block: new nodes and edges, a new layout
    assert json.loads(graph_value(deeper, analyze(deeper), "2:3"))["layout_key"] != graph["layout_key"]


def test_an_edit_redraws_the_graph_with_the_selection(start: dict) -> None:
    out = cb.on_mutate("wider", start["spec_yaml"], start["history"], "2:2")
    graph = json.loads(out["graph"])
    node = next(n for n in graph["nodes"] if n.get("place") == "stage 2, block 2")
    assert graph["selected"] == "2:2" and node["out_shape"][1] > 40


def test_clicking_a_node_selects_its_block(start: dict) -> None:
    out = on_select_graph_node("3:3", start["spec_yaml"])
    assert out["picker"]["value"] == "3:3"
    assert "stage 3, block 3" in out["form_title"] and "attention_condenser" in out["form_title"]
    assert on_select_graph_node("9:9", start["spec_yaml"]) == {}  # a stale key changes nothing
    assert on_select_graph_node("head", start["spec_yaml"])["picker"]["value"] == "head"


def test_warnings_html_escapes_and_counts() -> None:
    assert "no warnings" in warnings_html([])
    text = warnings_html([DesignWarning("channels", "stage 1, block 1", "1:1", "out <b>30</b>", "use out 32")] * 2)
    assert "Analyzer: 2 warnings" in text and "&lt;b&gt;30" in text and 'data-key="1:1"' in text


def test_pin_a_preset_and_see_the_deltas(start: dict) -> None:
    out = cc.on_pin_preset("mobilenetv3_small", start["spec_yaml"])
    assert out["baseline"]["name"] == "mobilenetv3_small"
    current, base = analyze(load_preset("attendnext")), analyze(load_preset("mobilenetv3_small"))
    change = int(re.search(r'id="baseline-delta-params" data-change="(-?\d+)"', out["baseline_note"]).group(1))
    assert change == current.params - base.params
    assert "mobilenetv3_small" in out["compare_status"]
    assert out["compare_diff"].startswith("--- baseline: mobilenetv3_small")
    names = [t.name for t in out["compare_chart"].data]
    assert names[:2] == ["baseline: mobilenetv3_small", "design: attendnext"]


def test_pin_the_current_design_then_edit(start: dict) -> None:
    pinned = cc.on_pin_current(start["spec_yaml"])
    assert "no difference yet" in pinned["compare_status"]
    assert 'data-change="0"' in pinned["baseline_note"]
    edited = cb.on_mutate("wider", start["spec_yaml"], start["history"], "2:2")
    after = cc.on_compare_refresh(edited["spec_yaml"], pinned["baseline"])
    a, b = analyze(apply_mutation(load_preset("attendnext"), "wider", 2, 2)), analyze(load_preset("attendnext"))
    assert f'data-change="{a.macs - b.macs}"' in after["baseline_note"]
    assert "\n-" in after["compare_diff"] and "\n+" in after["compare_diff"]  # the widened block's line changed
    cleared = cc.on_clear_baseline()
    assert cleared["baseline"] is None and cleared["baseline_note"] == "" and cleared["compare_chart"] is None


def test_pin_design_for_other_tabs_and_its_errors(start: dict) -> None:
    spec = load_preset("fbnet_c")
    assert cc.pin_design(spec, "search result 3") == {"name": "search result 3", "yaml": dump_spec(spec)}
    assert cc.pin_design(dump_spec(spec))["name"] == "fbnet_c"
    with pytest.raises(SpecError):
        cc.pin_design("name: [unclosed")
    assert "Pick a preset" in cc.on_pin_preset("", start["spec_yaml"])["compare_status"]
    assert "Not pinned" in cc.on_pin_preset("no_such_preset", start["spec_yaml"])["compare_status"]
    assert cc.on_compare_refresh(start["spec_yaml"], None)["compare_status"] == cc.NO_BASELINE
    needs = cc.on_compare_refresh(start["spec_yaml"], {"name": "x", "yaml": start["spec_yaml"]}, True, "")
    assert "pick a device profile" in needs["compare_status"]


def test_pure_compare_pieces() -> None:
    a, b = analyze(load_preset("attendnext")), analyze(load_preset("mobilenetv3_small"))
    (params, *_rest) = total_deltas(a, b)
    assert params.change == a.params - b.params
    assert params.share == pytest.approx((a.params - b.params) / b.params)
    stages = stage_totals(a)
    assert [s.label for s in stages] == ["stem", "stage 1", "stage 2", "stage 3", "stage 4", "stage 5", "head"]
    assert sum(s.params for s in stages) == a.params and sum(s.macs for s in stages) == a.macs
    assert all(s.latency_ms is None for s in stages)
    fig = compare_stages_figure(stages, stage_totals(b), "attendnext", "mobilenetv3_small")
    assert fig.data[0].x[-1] == "head" and "stage 6" in fig.data[0].x  # union of both designs' stages
    assert len(fig.data) == 4  # params and MACs rows, no latency row without predictions
    timed = stage_totals(a, {r.address: 1.0 for r in a.blocks})
    assert sum(s.latency_ms or 0 for s in timed) == len(a.blocks)
    assert len(compare_stages_figure(timed, timed, "x", "y").data) == 6
    assert yaml_diff("a: 1\n", "a: 1\n") == ""
    assert "-a: 1\n+a: 2\n" in yaml_diff("a: 1\n", "a: 2\n")
