"""``explorer.ui.show`` end to end: the page opens on the given design, and an edit there reaches the handle."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from explorer.analysis import analyze
from explorer.design import load_design
from tests.tiny_designs import tiny_design

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser


def test_an_edit_in_the_page_reaches_the_handle(browser: Browser) -> None:
    import explorer.ui

    start = load_design(tiny_design("tiny-shown"))
    handle = explorer.ui.show(start, display=False)
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        page.goto(handle.url, wait_until="domcontentloaded")
        expected = analyze(start).params
        page.wait_for_function(
            "v => document.querySelector('#metric-params')?.dataset.value === String(v)", arg=expected)
        page.click("#new-empty")
        deadline = time.monotonic() + 30
        while handle.design == start and time.monotonic() < deadline:
            time.sleep(0.2)
        assert handle.design != start, "the page's edit did not reach the handle"
        assert int(page.get_attribute("#metric-params", "data-value")) == analyze(handle.design).params
    finally:
        context.close()
        handle.close()
