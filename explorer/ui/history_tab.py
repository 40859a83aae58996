"""The history tab: every stored run and design, charts of them, and "load into editor".

Only layout and wiring; the callbacks are ``explorer.ui.history_callbacks``. ``build_history_tab``
is called by ``explorer.ui.app`` inside an open ``gr.Tab`` with the design state and the YAML
editor; loading a design sets the editor's text, whose change event validates and applies it.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from . import history_callbacks as hc
from .compare_tab import CompareWiring
from .search_tab import build_searches_panel

__all__ = ["build_history_tab"]


def build_history_tab(spec_yaml: gr.State, editor: gr.Code, compare: CompareWiring | None = None) -> None:
    """Lay out the history panel inside the open tab and wire it to ``history_callbacks``.

    ``compare`` (the Design tab's ``CompareWiring``), when given, adds "Pin as baseline" for the picked
    stored design; clicking a run's row picks the design it was trained from.
    """
    with gr.Row():
        refresh_btn = gr.Button("Refresh", elem_id="hist-refresh")
    status = gr.Markdown("", elem_id="hist-status")
    runs_table = gr.Dataframe(headers=hc.RUN_HEADERS, interactive=False,
                              label="training runs (newest first; click a row to pick its design below)",
                              elem_id="hist-runs", max_height=360)
    chart = gr.Plot(label="accuracy vs MACs", elem_id="hist-chart")
    with gr.Row():
        picked_runs = gr.Dropdown([], multiselect=True, label="runs to compare", elem_id="hist-pick-runs")
    curves = gr.Plot(label="curves of the chosen runs", elem_id="hist-curves")
    designs_table = gr.Dataframe(headers=hc.DESIGN_HEADERS, interactive=False,
                                 label="stored designs: params as designed, and of the copies their runs trained",
                                 elem_id="hist-designs", max_height=300)
    latency_table = gr.Dataframe(headers=hc.LATENCY_HEADERS, interactive=False,
                                 label="latency measurements (newest first): which network was timed, how and where",
                                 elem_id="hist-latency", max_height=300)
    with gr.Row():
        picked_design = gr.Dropdown([], label="stored design", elem_id="hist-pick-design")
        load_btn = gr.Button("Load into editor", variant="primary", elem_id="hist-load")
        pin_btn = gr.Button("Pin as baseline", elem_id="hist-pin", visible=compare is not None)

    # each handler bears its callback's name, which is its endpoint in the Gradio API
    def on_refresh() -> tuple[Any, ...]:
        out = hc.on_refresh()
        return (out["status"], out["runs_table"], out["chart"], gr.update(choices=out["run_choices"]),
                out["designs_table"], gr.update(choices=out["design_choices"]), out["latency_table"])

    def on_pick_runs(run_ids: list[Any]) -> Any:
        return hc.on_pick_runs(run_ids)

    def on_load_design(design_id: Any) -> tuple[Any, Any]:
        out = hc.on_load_design(design_id)
        return out["status"], out.get("editor", gr.skip())

    refresh_outputs = [status, runs_table, chart, picked_runs, designs_table, picked_design, latency_table]
    refresh_btn.click(on_refresh, None, refresh_outputs)
    picked_runs.change(on_pick_runs, [picked_runs], [curves])
    load_btn.click(on_load_design, [picked_design], [status, editor])

    def on_select_run(evt: gr.SelectData) -> tuple[Any, Any]:  # a run's row picks the design it was trained from
        row = getattr(evt, "row_value", None) or []
        out = hc.on_select_run(row[0] if row else None)
        return out["status"], out.get("design", gr.skip())

    runs_table.select(on_select_run, None, [status, picked_design])
    if compare is not None:
        compare.pin_from(pin_btn.click, hc.on_pin_stored_design, [picked_design], status)
    # the tab fills itself when the page loads (a Blocks-level load event is the app's; a tab's own
    # select event refreshes whenever the user opens it)
    parent = gr.context.Context.block
    while parent is not None and not isinstance(parent, gr.Tab):
        parent = getattr(parent, "parent", None)
    if parent is not None:
        parent.select(on_refresh, None, refresh_outputs)
    build_searches_panel(editor)  # the stored searches, their candidates and fronts
