"""The design report opens offline in the system Chromium and draws its charts (plotly's SVG present).

The page is a local file; the browser context is offline and every request that is not the file
itself is aborted and recorded, so a chart that needed the network would stay empty and fail here.
Set ``REPORT_SCREENSHOT=/path.png`` to keep a full-page screenshot (default: the test's temporary folder).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from explorer.design import load_design
from explorer.report import write_report
from explorer.store import StepRow, Store
from tests.tiny_designs import tiny_design

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

pytestmark = pytest.mark.browser

FIGURES = ("fig-diagram", "fig-bars", "fig-presets", "fig-curves", "fig-accuracy")


def test_report_draws_its_charts_offline(browser: Browser, tmp_path: Path) -> None:
    spec = load_design(tiny_design("tiny-report"))
    with Store(tmp_path / "s.sqlite") as store:
        design_id = store.save_design(spec)
        store.save_latency(design_id, "onnxruntime", "host", 0.8, threads=1, runs=20)
        run_id = store.start_run(design_id, "digits", {"input_size": 16})
        store.log_steps(run_id, [StepRow(step=s, train_loss=2.3 - s / 20, val_accuracy=s / 50 if s % 10 == 0 else None)
                                 for s in range(5, 25, 5)])
        store.finish_run(run_id, "finished", {"steps": 20, "val_accuracy": 0.4, "macs": 190_912})
        path = write_report(spec, tmp_path / "design.html", store)

    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
    blocked: list[str] = []

    def only_the_file(route: Route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_file)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(path.as_uri(), wait_until="load", timeout=30_000)
        for fig in FIGURES:
            page.wait_for_selector(f"#{fig} svg.main-svg", timeout=20_000)
        assert page.locator("#fig-bars .bars path").count() >= 2 * 4  # two bar rows of the four units
        assert page.locator("#fig-diagram .bars path").count() >= 4
        assert page.locator("#fig-curves .scatterlayer .trace").count() == 2
        assert page.locator("#units-table tbody tr").count() == 4
        assert page.locator("#latency-table tbody tr").count() == 1
        assert "tiny-report" in page.inner_text("#spec-yaml")
        shot = Path(os.environ.get("REPORT_SCREENSHOT") or tmp_path / "report.png")
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    finally:
        context.close()
    assert not errors, f"the page raised: {errors}"
    assert not blocked, f"the report asked the network for {blocked}"


def test_download_report_button(page: object, tmp_path: Path) -> None:
    """The app's "Download report" button hands the browser the current design's report."""
    with page.expect_download(timeout=60_000) as info:  # type: ignore[attr-defined]
        page.click("#report-btn")  # type: ignore[attr-defined]
    target = tmp_path / "report.html"
    info.value.save_as(target)
    text = target.read_text()
    assert text.startswith("<!DOCTYPE html>") and 'id="fig-diagram"' in text and 'id="units-table"' in text
    title = page.inner_text("#metric-params .value")  # type: ignore[attr-defined]
    assert title  # the page still works after the download
