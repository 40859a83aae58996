"""The "My designs" tab: every design the explorer showed, reopened with one click, renamed at will.

Only layout and wiring; the callbacks are ``explorer.ui.designs``. Opening a design sets the YAML
editor's text, whose change event validates and applies it (as the History tab's "load" does).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from . import designs as dc
from .compare_tab import CompareWiring

__all__ = ["build_designs_tab"]

HELP = """\
Every design you analyse is kept here (the same design once, however often you reach it), newest
first, with the name it had; rename any of them. **Open** puts it back in the editor; **Pin as baseline**
compares the design on screen against it.
"""


def build_designs_tab(editor: gr.Code, compare: CompareWiring | None = None) -> None:
    """Lay out the "My designs" panel inside the open tab and wire it to ``explorer.ui.designs``.

    ``compare`` (the Design tab's ``CompareWiring``), when given, adds "Pin as baseline" for the picked design.
    """
    gr.Markdown(HELP)
    status = gr.Markdown("", elem_id="my-designs-status")
    table = gr.Dataframe(headers=dc.MY_DESIGN_HEADERS, interactive=False, elem_id="my-designs",
                         label="my designs (last opened first)", max_height=420)
    with gr.Row(equal_height=True):
        pick = gr.Dropdown([], label="design", elem_id="my-designs-pick", scale=3)
        open_btn = gr.Button("Open", variant="primary", elem_id="my-designs-open", scale=1)
        pin_btn = gr.Button("Pin as baseline", elem_id="my-designs-pin", scale=1, visible=compare is not None)
        refresh_btn = gr.Button("Refresh", elem_id="my-designs-refresh", scale=1)
    with gr.Row(equal_height=True):
        name = gr.Textbox(label="new name", elem_id="my-designs-name", scale=3, max_length=200)
        rename_btn = gr.Button("Rename", elem_id="my-designs-rename", scale=1)

    def shown(out: dict[str, Any]) -> tuple[Any, ...]:
        return (out["my_designs_status"], out.get("my_designs_table", gr.skip()),
                gr.update(choices=out["my_designs_choices"]) if "my_designs_choices" in out else gr.skip())

    # each handler bears its callback's name, which is its endpoint in the Gradio API
    def on_list_designs() -> tuple[Any, ...]:
        return shown(dc.on_list_designs())

    def on_rename_design(design_id: Any, new_name: str) -> tuple[Any, ...]:
        return shown(dc.on_rename_design(design_id, new_name))

    def on_open_design(design_id: Any) -> tuple[Any, Any]:
        out = dc.on_open_design(design_id)
        return out["my_designs_status"], out.get("editor", gr.skip())

    listed = [status, table, pick]
    refresh_btn.click(on_list_designs, None, listed)
    rename_btn.click(on_rename_design, [pick, name], listed)
    open_btn.click(on_open_design, [pick], [status, editor])
    if compare is not None:
        compare.pin_from(pin_btn.click, dc.on_pin_kept_design, [pick], status)

    def on_pick_row(evt: gr.SelectData) -> Any:  # a click on a row picks that design
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        ids = [d for _, d in dc.on_list_designs()["my_designs_choices"]]
        return gr.update(value=ids[int(row)]) if 0 <= int(row) < len(ids) else gr.skip()

    table.select(on_pick_row, None, [pick])
    parent = gr.context.Context.block
    while parent is not None and not isinstance(parent, gr.Tab):
        parent = getattr(parent, "parent", None)
    if parent is not None:
        parent.select(on_list_designs, None, listed)
