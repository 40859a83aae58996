"""The search tab: constraint-guided evolution from the current design (``explorer.search``).

Only layout and wiring; the callbacks are ``explorer.ui.search_callbacks``. ``build_search_tab``
is called by ``explorer.ui.app`` inside an open ``gr.Tab`` with the design state and the YAML
editor, which "Load the best design" sets (its change event validates and applies it).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..latency.profiles import list_profiles
from . import search_callbacks as sc
from .render import gradio_progress
from .state import session_key

__all__ = ["build_search_tab"]

HELP = """\
Machine-driven design exploration, as in the paper: regularised evolution from the current
design with the mutations of the Design tab. Children that break a budget or a best-practice
rule are rejected; the rest compete on the objective.
"""


def build_search_tab(spec_yaml: gr.State, editor: gr.Code) -> None:
    """Lay out the search panel inside the open tab and wire it to ``search_callbacks``."""
    gr.Markdown(HELP)
    with gr.Row():
        objective = gr.Dropdown(sc.OBJECTIVES, value="macs", label="objective", elem_id="search-objective")
        steps = gr.Number(30, label="steps", precision=0, minimum=1, maximum=2000, elem_id="search-steps")
        seed = gr.Number(0, label="seed", precision=0, elem_id="search-seed")
    with gr.Row():
        max_params = gr.Number(None, label="max params (M)", elem_id="search-max-params")
        max_gmacs = gr.Number(None, label="max GMACs", elem_id="search-max-macs")
        max_latency = gr.Number(None, label="max predicted latency (ms)", elem_id="search-max-latency")
        device = gr.Dropdown(list_profiles(), value="host", label="device profile", elem_id="search-device")
    with gr.Row():
        antialias = gr.Checkbox(True, label="anti-aliased downsampling", elem_id="search-antialias")
        early = gr.Checkbox(True, label="attention condensers early", elem_id="search-early")
    with gr.Row():
        run_btn = gr.Button("Search", variant="primary", elem_id="search-run")
        stop_btn = gr.Button("Stop", elem_id="search-stop")
        load_btn = gr.Button("Load the best design", elem_id="search-load")
    status = gr.Markdown("", elem_id="search-status")
    chart = gr.Plot(label="evaluated designs", elem_id="search-chart")
    table = gr.Dataframe(headers=sc.TABLE_HEADERS, interactive=False, label="every design evaluated",
                         elem_id="search-table", max_height=360)
    best = gr.State("")

    # each handler bears its callback's name, which is its endpoint in the Gradio API
    def on_search(spec: str, obj: str, n: float, mp: Any, mg: Any, ml: Any, dev: str, aa: bool, ce: bool, s: float,
                  request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        out = sc.on_search(spec, obj, n, mp, mg, ml, dev, aa, ce, s, progress=gradio_progress(progress),
                           session=session_key(request))
        return (out["status"], out["chart"] if out["chart"] is not None else gr.skip(),
                out["table"] if out["table"] is not None else gr.skip(), out["best_yaml"] or gr.skip())

    def on_stop_search(request: gr.Request) -> str:
        return sc.on_stop_search(session_key(request))

    def on_load_best(best_yaml: str) -> tuple[Any, Any]:
        out = sc.on_load_best(best_yaml)
        return out["status"], out.get("editor", gr.skip())

    run_btn.click(on_search, [spec_yaml, objective, steps, max_params, max_gmacs, max_latency, device, antialias,
                              early, seed], [status, chart, table, best], concurrency_limit=1, concurrency_id="search")
    stop_btn.click(on_stop_search, None, status, concurrency_limit=None)
    load_btn.click(on_load_best, [best], [status, editor])
