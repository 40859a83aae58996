"""What an edit's redraw sends: ``gr.skip()`` answered without Gradio's rebuild, and only what the page lacks.

``explorer.ui.quick_skip``: the reply of ``Blocks.postprocess_data`` is the same, value by value,
with the patch as without it, while a skipped component is no longer rebuilt.
``SessionGate.unchanged_skipped``: an update repeating the properties a session's page already
has is sent as its bare value (or skipped while its component stays hidden); a server-written
view is skipped when unchanged; a value a person can edit is always sent.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gradio as gr
import pytest
from gradio.blocks import Blocks
from gradio.state_holder import SessionState

from explorer.ui import quick_skip
from explorer.ui.sessions import SERVER_VIEWS, SessionGate


def _demo() -> tuple[gr.Blocks, list[Any], Any]:
    with gr.Blocks() as demo:
        state = gr.State({})
        outputs = [gr.Number(label="n"), gr.Dropdown(choices=["a", "b"], label="d"), gr.Checkbox(label="c"),
                   gr.Markdown("title"), gr.Textbox(label="t"), state]
        button = gr.Button()
        button.click(lambda: None, None, outputs)
    return demo, outputs, demo.fns[0]


def _postprocess(demo: gr.Blocks, fn: Any, values: list[Any], patched: bool) -> list[Any]:
    original = Blocks.postprocess_data
    Blocks.postprocess_data = quick_skip._postprocess_data if patched else quick_skip._ORIGINAL
    try:
        # in a thread of its own: a session-wide Playwright fixture may hold a running loop in this one
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, demo.postprocess_data(fn, values, SessionState(demo))).result()
    finally:
        Blocks.postprocess_data = original


CASES = [
    [gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()],
    [3, gr.skip(), gr.skip(), "**new**", gr.skip(), {"x": 1}],
    [gr.update(visible=False, value=None), gr.update(choices=["a", "c"], value="c"), True, gr.skip(), "text",
     gr.skip()],
    [gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.update(label="only one left"), gr.skip()],
]


@pytest.mark.parametrize("values", CASES)
def test_the_reply_is_the_same_with_and_without_the_patch(values: list[Any]) -> None:
    demo, _outputs, fn = _demo()
    before = _postprocess(demo, fn, [dict(v) if isinstance(v, dict) else v for v in values], patched=False)
    after = _postprocess(demo, fn, [dict(v) if isinstance(v, dict) else v for v in values], patched=True)
    assert json.dumps(after, default=str, sort_keys=True) == json.dumps(before, default=str, sort_keys=True)


def test_a_skipped_component_is_not_rebuilt(monkeypatch: pytest.MonkeyPatch) -> None:
    demo, outputs, fn = _demo()
    built: list[str] = []
    for component in outputs[:5]:
        cls = type(component)
        original = cls.__init__

        def counting(self: Any, *args: Any, _original: Any = original, _name: str = cls.__name__, **kw: Any) -> None:
            built.append(_name)
            _original(self, *args, **kw)

        monkeypatch.setattr(cls, "__init__", counting)
    _postprocess(demo, fn, [gr.skip()] * 5 + [{}], patched=False)
    assert len(built) == 5  # Gradio alone rebuilds every skipped output
    built.clear()
    _postprocess(demo, fn, [gr.skip()] * 5 + [{}], patched=True)
    assert built == []
    _postprocess(demo, fn, [gr.skip(), gr.update(label="x"), gr.skip(), gr.skip(), gr.skip(), {}], patched=True)
    assert built == ["Dropdown"]  # an update still builds its component, as Gradio does


def test_install_is_idempotent_and_reports_itself() -> None:
    assert quick_skip.install() and quick_skip.install()
    assert quick_skip.installed()


# ----------------------------------------------------------------------------- what a session's page lacks


def _form(label: str, value: Any, visible: bool = True) -> dict[str, Any]:
    return gr.update(visible=visible, label=label, info="why", value=value)


def test_repeated_properties_send_the_bare_value() -> None:
    gate = SessionGate()
    first = gate.unchanged_skipped("s1", {"slot0_number": _form("out", 32)})
    assert first["slot0_number"] == _form("out", 32)  # the page has no properties from us yet
    again = gate.unchanged_skipped("s1", {"slot0_number": _form("out", 40)})
    assert again["slot0_number"] == 40  # same label, info, visibility: only the value travels
    relabelled = gate.unchanged_skipped("s1", {"slot0_number": _form("expand", 4)})
    assert relabelled["slot0_number"] == _form("expand", 4)  # another block's field: everything again
    other = gate.unchanged_skipped("s2", {"slot0_number": _form("expand", 4)})
    assert other["slot0_number"] == _form("expand", 4)  # another session's page knows nothing yet


def test_a_partial_update_is_merged_into_what_the_page_has() -> None:
    gate = SessionGate()
    gate.unchanged_skipped("s", {"slot1_number": _form("kernel", 3)})
    warned = gate.unchanged_skipped("s", {"slot1_number": gr.update(info="⚠ kernel 4 is even")})
    assert warned["slot1_number"] == gr.update(info="⚠ kernel 4 is even")
    back = gate.unchanged_skipped("s", {"slot1_number": _form("kernel", 3)})
    assert back["slot1_number"] == _form("kernel", 3)  # its info differs from the warning the page shows
    assert gate.unchanged_skipped("s", {"slot1_number": _form("kernel", 5)})["slot1_number"] == 5


def test_a_field_that_stays_hidden_is_skipped() -> None:
    gate = SessionGate()
    hidden = gr.update(visible=False, value=None)
    assert gate.unchanged_skipped("s", {"slot9_number": hidden})["slot9_number"] == hidden
    assert gate.unchanged_skipped("s", {"slot9_number": gr.update(visible=False, value=None)})[
        "slot9_number"] == gr.skip()
    shown = gate.unchanged_skipped("s", {"slot9_number": _form("out", 8)})["slot9_number"]
    assert shown == _form("out", 8)  # shown again: label, visibility and value all sent


def test_server_views_are_skipped_when_unchanged_and_edited_values_always_sent() -> None:
    gate = SessionGate()
    assert {"table", "bars", "form_title"} <= SERVER_VIEWS and "editor" not in SERVER_VIEWS
    figure = object()  # a chart: the same object only (a figure is not compared by value)
    values = {"table": [[1, "a"]], "form_title": "**2.1**", "bars": figure, "editor": "name: x", "preset": "p"}
    assert gate.unchanged_skipped("s", values) == values
    again = gate.unchanged_skipped("s", {"table": [[1, "a"]], "form_title": "**2.1**", "bars": figure,
                                         "editor": "name: x", "preset": "p"})
    assert again == {"table": gr.skip(), "form_title": gr.skip(), "bars": gr.skip(), "editor": "name: x",
                     "preset": "p"}  # what a person may have typed over is reset, as before
    changed = gate.unchanged_skipped("s", {"table": [[2, "a"]], "bars": object()})
    assert changed["table"] == [[2, "a"]] and changed["bars"] != gr.skip()


def test_a_forgotten_session_starts_over() -> None:
    gate = SessionGate()
    gate.unchanged_skipped("s", {"slot0_number": _form("out", 1), "table": [[1]]})
    gate.forget("s")
    again = gate.unchanged_skipped("s", {"slot0_number": _form("out", 1), "table": [[1]]})
    assert again == {"slot0_number": _form("out", 1), "table": [[1]]}


def test_an_edits_charts_and_table_are_drawn_when_the_redraw_sends_them() -> None:
    from explorer.ui import callbacks as cb
    from explorer.ui.render import Later, resolved

    start = cb.initial_values()
    assert not isinstance(start["bars"], Later)  # the first page is drawn whole
    edited = cb.on_mutate("wider", start["spec_yaml"], start["history"], "2:2")
    assert all(isinstance(edited[k], Later) for k in ("table", "bars", "scatter", "diagram"))
    assert isinstance(edited["metrics"], str) and "spec_yaml" in edited  # the numbers are ready at once
    drawn = {k: resolved(edited[k]) for k in ("table", "bars")}
    assert drawn["table"] and len(drawn["table"]) == len(start["table"]) and drawn["bars"].data
    assert resolved(edited["bars"]) is drawn["bars"]  # drawn once
    sent = SessionGate().unchanged_skipped("s", {k: edited[k] for k in ("table", "bars", "editor")})
    assert sent["table"] == drawn["table"] and sent["bars"] is drawn["bars"] and sent["editor"] == edited["editor"]
