"""The explorer in a real browser: presets, mutations, broken YAML, save and load.

Expected numbers come from ``explorer.analysis`` in this process, never typed in by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from explorer.analysis import analyze
from explorer.design import load_design, load_preset
from explorer.mutate import apply_mutation

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def params(page: Page) -> int:
    """The exact parameter count on the params card."""
    return int(page.get_attribute("#metric-params", "data-value"))


def wait_params_change(page: Page, old: int) -> int:
    page.wait_for_function(
        "old => document.querySelector('#metric-params').dataset.value !== String(old)", arg=old)
    return params(page)


def pick_preset(page: Page, name: str) -> None:
    page.click("#preset input")
    page.locator("ul[role=listbox] li", has_text=name).first.click()


def open_tab(page: Page, container: str, name: str) -> None:
    page.locator(container).get_by_role("tab", name=name).click()


def test_pick_attendnext_and_read_its_params(page: Page) -> None:
    small = analyze(load_preset("mobilenetv3_small"))
    attendnext = analyze(load_preset("attendnext"))
    start = params(page)
    assert start == attendnext.params  # the page opens on AttendNeXt
    pick_preset(page, "mobilenetv3_small")
    assert wait_params_change(page, start) == small.params
    assert page.inner_text("#metric-params .value") == f"{small.params / 1e6:.3f} M"
    pick_preset(page, "attendnext")
    assert wait_params_change(page, small.params) == attendnext.params
    assert page.inner_text("#metric-params .value") == f"{attendnext.params / 1e6:.3f} M"
    assert page.inner_text("#metric-macs .value") == f"{attendnext.macs / 1e9:.3f} G"


def test_mutation_changes_the_numbers_and_undo_restores_them(page: Page) -> None:
    before = params(page)
    page.click("#mut-wider")  # the selected block is stage 1, block 1
    after = wait_params_change(page, before)
    assert after == analyze(apply_mutation(load_preset("attendnext"), "wider", 1)).params
    assert "Wider at stage 1" in page.inner_text("#status")
    page.click("#undo")
    assert wait_params_change(page, after) == before


def test_broken_yaml_shows_the_error_and_the_design_stays(page: Page) -> None:
    before = params(page)
    open_tab(page, "#edit-tabs", "YAML")
    page.click("#yaml-editor .cm-content")
    page.keyboard.press("Control+A")
    page.keyboard.insert_text("name: a: b\n")
    page.wait_for_selector("#yaml-error .error-box")
    assert "YAML error at line 1" in page.inner_text("#yaml-error")
    assert params(page) == before  # the last valid design is still on screen
    assert "name: a: b" in page.inner_text("#yaml-editor .cm-content")  # and the typing is not lost
    # an edit made elsewhere rewrites the editor, but the broken draft is kept and comes back
    open_tab(page, "#edit-tabs", "Edit")
    page.click("#mut-deeper")
    wait_params_change(page, before)
    open_tab(page, "#edit-tabs", "YAML")
    page.wait_for_selector("#draft-note :text('it is kept')")
    page.click("#restore-draft")
    page.wait_for_function("document.querySelector('#yaml-editor .cm-content').innerText.includes('name: a: b')")
    page.wait_for_selector("#yaml-error .error-box")


def test_download_the_yaml_and_load_it_back(page: Page, tmp_path: Path) -> None:
    before = params(page)
    page.click("#mut-deeper")
    mutated = wait_params_change(page, before)
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / "design.yaml"
    download.value.save_as(saved)
    assert analyze(load_design(saved)).params == mutated
    pick_preset(page, "mobilenetv3_small")
    other = wait_params_change(page, mutated)
    with page.expect_file_chooser() as chooser:  # the button opens the system file dialog
        page.click("#upload")
    chooser.value.set_files(str(saved))
    assert wait_params_change(page, other) == mutated
    assert "Loaded design.yaml" in page.inner_text("#status")


def test_latency_prediction_in_its_tab(page: Page) -> None:  # the Search tab: test_search_browser.py
    from explorer.latency.predictor import predict
    from explorer.latency.profiles import load_profile

    open_tab(page, "#main-tabs", "Latency")
    page.click("#lat-predict")
    page.wait_for_selector("#lat-status :text('predicted')")
    expected = predict(load_preset("attendnext"), load_profile("host"))
    assert f"{expected:.2f}" in page.inner_text("#lat-status")


def test_train_in_the_browser_then_find_the_run_in_history_and_reload_it(page: Page) -> None:
    """Training tab: a short run streams its curves and ends stored; History lists it and loads its design."""
    pick_preset(page, "mobilenetv3_small")
    small = wait_params_change(page, analyze(load_preset("attendnext")).params)
    open_tab(page, "#main-tabs", "Training")
    page.fill("#train-steps input", "20")
    page.click("#train-start")
    page.wait_for_selector("#train-status :text('finished')", timeout=120_000)
    status = page.inner_text("#train-status")
    assert "20 steps" in status and "val accuracy" in status
    assert page.locator("#train-loss .js-plotly-plot").count() == 1
    assert page.locator("#train-acc .js-plotly-plot").count() == 1

    pick_preset(page, "attendnext")
    wait_params_change(page, small)
    open_tab(page, "#main-tabs", "History")
    page.click("#hist-refresh")
    page.wait_for_selector("#hist-status :text('run(s)')")
    assert "mobilenetv3_small" in page.inner_text("#hist-runs")
    assert page.locator("#hist-chart .js-plotly-plot").count() == 1
    page.click("#hist-pick-design input")
    page.locator("ul[role=listbox] li", has_text="mobilenetv3_small").first.click()
    page.click("#hist-load")
    page.wait_for_selector("#hist-status :text('Loaded design')")
    # the stored design is the one trained (32x32, 10 classes): the editor applies it to the numbers
    trained = wait_params_change(page, analyze(load_preset("attendnext")).params)
    assert trained < analyze(load_preset("attendnext")).params
