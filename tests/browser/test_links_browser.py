"""Work that survives a reload, links, and the rough edges, in a real browser.

Expected numbers come from ``explorer.analysis`` in this process. Screenshots go to
``$SHOTS_DIR`` (default ``/tmp/shots``) for a person to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from explorer.analysis import analyze
from explorer.design import load_preset
from explorer.link import design_url, encode_design

from .conftest import WAIT_MS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("SHOTS_DIR", "/tmp/shots"))  # noqa: S108 - screenshots for a person, nothing read back


def params(page: Page) -> int:
    return int(page.get_attribute("#metric-params", "data-value"))


def wait_params(page: Page, value: int) -> None:
    page.wait_for_function("v => document.querySelector('#metric-params')?.dataset.value === String(v)", arg=value)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def toasts(page: Page) -> list[str]:
    return page.locator('[data-testid="toast-body"]').all_inner_texts()


@pytest.fixture()
def fresh(browser: Browser) -> Iterator[Page]:
    """A page in a new browser context that has not opened the explorer yet (the test navigates)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    context.set_default_timeout(3 * WAIT_MS)  # a first page load also builds the page (slow on a busy machine)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_reload_keeps_the_design(page: Page) -> None:
    start = params(page)
    page.wait_for_function("location.search.includes('design=1.')")  # the address carries the design at once
    page.click("#mut-wider")
    page.wait_for_function("old => document.querySelector('#metric-params').dataset.value !== String(old)", arg=start)
    edited = params(page)
    page.wait_for_function("t => !location.search.includes(t)", arg=encode_design(load_preset("attendnext")))
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("#metric-params .value")
    wait_params(page, edited)
    assert "Opened the link's attendnext-edit-1" in page.inner_text("#status")
    assert page.is_disabled("#undo")  # the reopened design is the page's first step: nothing beneath it to undo
    shot(page, "reload-keeps-design")


def test_a_link_opens_its_design_and_block_in_a_fresh_page(fresh: Page, server: str) -> None:
    small = load_preset("mobilenetv3_small")
    fresh.goto(design_url(small, server, "2:1"), wait_until="domcontentloaded")
    fresh.wait_for_selector("#metric-params .value")
    wait_params(fresh, analyze(small).params)
    fresh.wait_for_function("document.querySelector('#block-picker input').value.startsWith('stage 2, block 1')")
    assert fresh.input_value("#preset input") == "mobilenetv3_small"  # the preset dropdown follows the design
    fresh.click("#copy-link")
    fresh.wait_for_function(
        "document.querySelector('#link-shown textarea, #link-shown input').value.includes('design=')")
    shot(fresh, "link-opens-design")
    assert not toasts(fresh)


def test_a_tampered_link_explains_itself(fresh: Page, server: str) -> None:
    token = encode_design(load_preset("mobilenetv3_small"))
    fresh.goto(f"{server}?design={token[:30]}x{token[31:]}", wait_until="domcontentloaded")
    fresh.wait_for_selector("#metric-params .value")
    fresh.wait_for_function("document.querySelector('#status').innerText.includes('default design was opened')")
    assert params(fresh) == analyze(load_preset("attendnext")).params
    assert "default design was opened instead" in fresh.inner_text("#edit-error")
    fresh.wait_for_function("t => location.search.includes(t)", arg=encode_design(load_preset("attendnext")))
    shot(fresh, "tampered-link")
    assert not toasts(fresh)


def test_removing_the_last_block_of_a_stage_shows_no_toast(page: Page) -> None:
    spec = load_preset("attendnext")
    last = len(spec.stages[0].blocks)
    page.click("#block-picker input")
    page.locator("ul[role=listbox] li", has_text=f"stage 1, block {last} ").first.click()
    page.wait_for_function(
        "n => document.querySelector('#form-title').innerText.includes('stage 1, block ' + n)", arg=last)
    before = params(page)
    page.click("#remove-block")
    page.wait_for_function("old => document.querySelector('#metric-params').dataset.value !== String(old)", arg=before)
    page.wait_for_timeout(2500)  # the chained redraw (picker, editor) and the editor's change event
    assert not toasts(page)
    shot(page, "removed-last-block")
    # and a stage: the last one
    before = params(page)
    page.click("#block-picker input")
    page.locator("ul[role=listbox] li", has_text=f"stage {len(spec.stages)}, block 1 ").first.click()
    page.click("#remove-stage")
    page.wait_for_function("old => document.querySelector('#metric-params').dataset.value !== String(old)", arg=before)
    page.wait_for_timeout(2500)
    assert not toasts(page)


def test_picking_a_preset_fires_once_and_the_dropdown_follows(page: Page) -> None:
    small = analyze(load_preset("mobilenetv3_small")).params
    page.click("#preset input")
    page.locator("ul[role=listbox] li", has_text="mobilenetv3_small").first.click()
    wait_params(page, small)
    page.wait_for_timeout(2000)
    status = page.inner_text("#status")
    assert "Loaded preset mobilenetv3_small" in status and "already" not in status
    page.click("#new-empty")
    page.wait_for_function("document.querySelector('#status').innerText.includes('empty design')")
    page.wait_for_function("document.querySelector('#preset input').value === ''")
    shot(page, "preset-follows")
