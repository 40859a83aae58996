"""The graph view and the compare panel in a real browser: click a node, pin a baseline.

Expected numbers come from ``explorer.analysis`` in this process. Screenshots go to
``$SHOTS_DIR`` (default: the test's temporary folder) as ``graph.png`` and ``compare.png``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from explorer.analysis import analyze
from explorer.design import load_preset
from explorer.mutate import apply_mutation

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CANVAS = "#design-graph .gv-canvas"
#: the page position of a graph node (Cytoscape.js keeps rendered positions relative to its canvas)
NODE_XY = """(id) => {
  const c = document.querySelector('#design-graph .gv-canvas'); const n = c._gv.cy.getElementById(id);
  const p = n.renderedPosition(); const r = c.getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }"""


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SHOTS_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_clicking_a_graph_node_selects_its_block(page: Page, tmp_path: Path) -> None:
    page.wait_for_selector(f"{CANVAS}[data-render-ms]")
    units = len(analyze(load_preset("attendnext")).blocks)
    assert int(page.get_attribute(CANVAS, "data-nodes")) > units  # every unit, plus the input and the adds
    assert page.get_attribute(CANVAS, "data-selected") == "1:1"
    # u6 is the seventh unit of AttendNeXt: stage 2, block 3 (its second DC-AC)
    x, y = page.evaluate(NODE_XY, "u6")
    page.mouse.click(x, y)
    page.wait_for_function("() => document.querySelector('#block-picker input').value.startsWith('stage 2, block 3')")
    page.wait_for_function("() => document.querySelector('#form-title').innerText.includes('attention_condenser')")
    assert page.evaluate("() => document.querySelector('#design-graph .gv-canvas')._gv.cy.$('node.selected')"
                         ".map(n => n.id())") == ["u6"]
    assert "attention condenser" in page.inner_text("#design-graph .gv-inside-title")
    assert "Analyzer: 1 warning" in page.inner_text("#design-warnings")
    page.screenshot(path=str(_shots(tmp_path) / "graph.png"), clip={"x": 0, "y": 0, "width": 1400, "height": 1150})
    # an edit at the selected block's stage redraws the graph with the new widths, the selection kept
    renders = page.get_attribute(CANVAS, "data-renders")
    page.click("#mut-wider")
    page.wait_for_function("n => document.querySelector('#design-graph .gv-canvas').dataset.renders !== n",
                           arg=renders)
    page.wait_for_function("() => document.querySelector('#design-graph .gv-canvas').dataset.selected === '2:3'")
    wider = analyze(apply_mutation(load_preset("attendnext"), "wider", 2))
    label = page.evaluate("() => document.querySelector('#design-graph .gv-canvas')._gv.cy.getElementById('u6')"
                          ".data('label')")
    assert label.endswith("×".join(map(str, wider.blocks[6].out_shape[1:])))
    # the same nodes and edges (stage 2 keeps its skips): relabelled in place, no new layout
    phases = json.loads(page.get_attribute(CANVAS, "data-phases"))
    assert "relabel" in phases and "layout" not in phases


def test_pin_a_baseline_and_see_the_delta(page: Page, tmp_path: Path) -> None:
    page.locator("#edit-tabs").get_by_role("tab", name="Compare").click()
    page.click("#pin-preset-choice input")
    page.locator("ul[role=listbox] li", has_text="mobilenetv3_small").first.click()
    page.click("#pin-preset")
    page.wait_for_selector("#baseline-delta-params")
    current, base = analyze(load_preset("attendnext")), analyze(load_preset("mobilenetv3_small"))
    assert int(page.get_attribute("#baseline-delta-params", "data-change")) == current.params - base.params
    assert "mobilenetv3_small" in page.inner_text("#baseline-note")
    # an edit: the deltas follow it (against the baseline, not the previous design)
    page.locator("#edit-tabs").get_by_role("tab", name="Edit").click()
    page.click("#mut-wider")  # the selected block is stage 1, block 1; "wider" acts on its stage
    edited = analyze(apply_mutation(load_preset("attendnext"), "wider", 1))
    page.wait_for_function(
        "v => document.querySelector('#baseline-delta-params')?.dataset.change === String(v)",
        arg=edited.params - base.params)
    page.locator("#edit-tabs").get_by_role("tab", name="Compare").click()
    page.locator("#compare-diff-box").get_by_text("YAML diff against the baseline").click()
    page.wait_for_function("() => document.querySelector('#compare-diff').innerText.includes('mobilenetv3_small')")
    page.wait_for_selector("#compare-chart .js-plotly-plot")
    page.screenshot(path=str(_shots(tmp_path) / "compare.png"), full_page=True)


def test_the_analyzer_sits_beside_the_graph_and_under_it_on_a_narrow_window(page: Page, tmp_path: Path) -> None:
    page.wait_for_selector(f"{CANVAS}[data-render-ms]")
    graph, warnings = page.locator("#design-graph").bounding_box(), page.locator("#design-warnings").bounding_box()
    assert warnings["x"] >= graph["x"] + graph["width"] - 1  # to the right of the graph (and its inside panel)
    assert abs(warnings["y"] - graph["y"]) < 40  # level with its top
    assert graph["width"] > 3 * warnings["width"]  # the graph wide, the list narrow
    page.screenshot(path=str(_shots(tmp_path) / "analyzer-wide.png"),
                    clip={"x": 0, "y": 0, "width": 1400, "height": 900})
    page.set_viewport_size({"width": 760, "height": 1800})
    page.wait_for_timeout(500)
    page.screenshot(path=str(_shots(tmp_path) / "analyzer-narrow.png"), full_page=True)
    graph, warnings = page.locator("#design-graph").bounding_box(), page.locator("#design-warnings").bounding_box()
    assert warnings["y"] >= graph["y"] + graph["height"] - 1  # under the graph, as wide as it
    assert warnings["width"] >= 0.95 * graph["width"]


def test_pin_a_kept_design_from_my_designs(page: Page, tmp_path: Path) -> None:
    """My designs: pick the kept AttendNeXt, pin it; after an edit the numbers bar's changes are against it."""
    page.click("#mut-wider")  # the page shows attendnext-edit-1; attendnext was kept when the page opened
    edited = analyze(apply_mutation(load_preset("attendnext"), "wider", 1))
    page.wait_for_function("v => document.querySelector('#metric-params').dataset.value === String(v)",
                           arg=edited.params)
    page.locator("#main-tabs").get_by_role("tab", name="My designs").click()
    page.wait_for_function("() => document.querySelector('#my-designs-status').innerText.includes('kept')")
    page.wait_for_function("() => document.querySelector('#my-designs').innerText.includes('attendnext')")
    page.click("#my-designs-pick input")
    page.screenshot(path=str(_shots(tmp_path) / "my-designs-pick.png"), full_page=False)
    page.locator("ul[role=listbox] li").filter(has_text=re.compile(r"#\d+ attendnext(\s|$)")).first.click()
    page.click("#my-designs-pin")
    page.wait_for_function("() => document.querySelector('#my-designs-status').innerText.includes('Pinned')")
    page.wait_for_selector("#baseline-delta-params")
    base = analyze(load_preset("attendnext"))
    assert int(page.get_attribute("#baseline-delta-params", "data-change")) == edited.params - base.params
    assert "attendnext (#" in page.inner_text("#baseline-note")
