"""The block form after edits, now that a redraw sends only what the page lacks (``SessionGate.unchanged_skipped``).

A mutation keeps the form's fields (their labels are not sent again, only the values); picking a
block of another type changes the labels and hides the fields it has not; picking the first
block again shows its labels and values. Expected values come from ``explorer.ui.forms``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from explorer.design import load_preset
from explorer.edit import BlockRef
from explorer.mutate import MUTATIONS, apply_mutation
from explorer.spec import ArchitectureSpec
from explorer.ui.forms import NUMBER_KINDS, form_values

from .conftest import WAIT_MS

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def pick_block(page: Page, stage: int, block: int) -> None:
    page.click("#block-picker input")
    page.locator("ul[role=listbox] li", has_text=f"stage {stage}, block {block} ").first.click()
    page.wait_for_function(
        "t => document.querySelector('#form-title').innerText.includes(t)", arg=f"stage {stage}, block {block}",
        timeout=WAIT_MS)


def expect_form(page: Page, spec: ArchitectureSpec, key: str) -> None:
    """Every number field of the block at ``key`` shows its name and value; the slots it has not are hidden."""
    _type, fields, values = form_values(spec, BlockRef.parse(key))
    for i, (field, value) in enumerate(zip(fields, values, strict=True)):
        if field.kind not in NUMBER_KINDS:
            continue
        box = f"#slot{i}-number"
        page.wait_for_function(
            "([box, name, value]) => { const e = document.querySelector(box);"
            " return e && e.offsetParent !== null && e.innerText.includes(name)"
            " && Number(e.querySelector('input').value) === value; }",
            arg=[box, field.name, float(value)], timeout=WAIT_MS)
    for i in range(len(fields), len(fields) + 2):
        page.wait_for_function(
            "box => { const e = document.querySelector(box); return !e || e.offsetParent === null; }",
            arg=f"#slot{i}-number", timeout=WAIT_MS)


def test_the_form_follows_mutations_and_block_picks(page: Page) -> None:
    spec = load_preset("attendnext")
    pick_block(page, 2, 2)
    expect_form(page, spec, "2:2")
    for _ in range(2):  # the same fields twice: only their values travel
        page.click("#mut-wider")
        spec = apply_mutation(spec, "wider", 2, 2 if MUTATIONS["wider"].scope == "block" else None)
        expect_form(page, spec, "2:2")
    pick_block(page, 2, 1)  # another block type: other labels, fewer fields
    expect_form(page, spec, "2:1")
    pick_block(page, 2, 2)
    expect_form(page, spec, "2:2")
