"""The Search tab in a real browser: a tiny search runs in the background to its end, its front is
drawn, and clicking a row of the front table, or a point of the front plot, loads that candidate into the
editor (the numbers follow).

The search is tiny: the 16×16 design of ``tests/tiny_designs.py`` typed into the YAML editor, the
free signals and one rung of one training step on ``digits``, three candidates, no preset references.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from explorer.analysis import analyze
from explorer.design import load_design
from explorer.spec import dump_spec

from tiny_designs import tiny_design

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: ``SEARCH_SCREENSHOT=PATH.png`` saves the tab with the finished search there (to look at by hand)
SHOT = os.environ.get("SEARCH_SCREENSHOT", "")


def params(page: Page) -> int:
    return int(page.get_attribute("#metric-params", "data-value"))


def set_number(page: Page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input")
    box.fill(value)
    box.press("Tab")  # Gradio takes a number box's value when it loses focus


def test_a_tiny_search_runs_to_its_end_and_a_point_loads_into_the_editor(page: Page) -> None:
    tiny = load_design(tiny_design(stem_stride=2))
    before = params(page)
    page.locator("#edit-tabs").get_by_role("tab", name="YAML").click()
    page.click("#yaml-editor .cm-content")
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(dump_spec(tiny))
    page.wait_for_function(
        "old => document.querySelector('#metric-params').dataset.value !== String(old)", arg=before)
    assert params(page) == analyze(tiny).params

    page.locator("#main-tabs").get_by_role("tab", name="Search").click()
    objectives = page.locator("#search-objectives")
    objectives.get_by_label("latency (min)").uncheck()
    objectives.get_by_label("params (min)").check()
    page.locator("#search-antialias input").uncheck()
    page.locator("#search-early input").uncheck()
    page.locator("#search-presets input").uncheck()
    page.click("#search-dataset input")
    page.locator("ul[role=listbox] li", has_text="digits").first.click()
    set_number(page, "search-input", "16")
    set_number(page, "search-train-steps", "1")
    set_number(page, "search-rungs", "1")
    set_number(page, "search-budget", "3")
    page.click("#search-run")
    page.wait_for_selector("#search-progress :text('search #')")  # started: running (or already done)
    page.wait_for_selector("#search-progress :text('finished')", timeout=180_000)
    progress = page.inner_text("#search-progress")
    assert "front of" in progress and "4 candidates (" in progress  # the start and three children
    # Gradio's table draws its rows as div[role=row] with cells data-testid="cell-ROW-COLUMN"
    rows = page.locator('#search-front-table div[role="row"]')
    rows.first.wait_for()
    assert page.locator("#search-front .js-plotly-plot").count() == 1
    assert page.locator("#search-hv .js-plotly-plot").count() == 1
    search_id = page.locator("#search-id").locator("input, textarea").first.input_value()
    assert search_id.isdigit()

    # the last row of the front: click it, and it becomes the design
    last = rows.count() - 1

    def cell(column: int) -> Any:
        return page.locator(f'#search-front-table [data-testid="cell-{last}-{column}"]')

    index = cell(0).inner_text().strip()
    row_params = float(cell(5).inner_text())
    shown = params(page)
    cell(1).click()
    page.wait_for_selector(f"#search-status :text('Loaded candidate #{index} of search {search_id}')")
    if index != "0":  # the start is the design already on screen
        page.wait_for_function(
            "old => document.querySelector('#metric-params').dataset.value !== String(old)", arg=shown)
    assert params(page) / 1e6 == pytest.approx(row_params, rel=1e-3)  # 4 significant digits in the table

    # a point of the plot itself: clicking it loads that candidate (plotly.js from the plotly package)
    plot = page.locator("#search-front .sf-plot")
    points = plot.locator(".scatterlayer .trace .points path")
    assert points.count() >= 4  # every candidate, the front and the start
    loaded = index
    for k in range(points.count()):  # a point that is not the candidate loaded now
        points.nth(k).click(force=True)
        page.wait_for_function("() => document.querySelector('#search-front .sf-plot').dataset.clicked !== undefined")
        clicked = plot.get_attribute("data-clicked")
        if clicked != loaded:
            break
    assert clicked is not None and clicked != loaded
    shown = params(page)
    page.wait_for_selector(f"#search-status :text('Loaded candidate #{clicked} of search {search_id}')")
    tiny_params = analyze(tiny).params
    if clicked != "0" and loaded != "0":
        page.wait_for_function(
            "old => document.querySelector('#metric-params').dataset.value !== String(old)", arg=shown)
    elif clicked == "0":  # the start: the design typed in at the beginning
        page.wait_for_function("want => document.querySelector('#metric-params').dataset.value === String(want)",
                               arg=tiny_params)
    if SHOT:
        Path(SHOT).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOT, full_page=True)
