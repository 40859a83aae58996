"""The search tab: a multi-objective search from the current design, run in the background, drawn live.

Only layout and wiring; the callbacks are ``explorer.ui.search_callbacks`` (the background runner is
``explorer.ui.search_runner``). ``build_search_tab`` is called by ``explorer.ui.app`` inside an open
``gr.Tab`` with the design state and the YAML editor, which loading a candidate sets (its change event
validates and applies it). ``build_searches_panel`` is the History tab's list of stored searches.

While a search runs, a ``gr.Timer`` polls it once a second (it is active only then): the progress
line with its ETA, the live front, the hypervolume curve and the front's table.

The live front is clickable: ``gr.Plot`` has no click event, so it is a ``gr.HTML`` whose value is the
figure as JSON, drawn by plotly.js from the plotly package's own bundled file (served by this server,
``PLOTLY_JS``; nothing from a CDN) in ``FRONT_JS``. Clicking a candidate's point sends ``select`` with
its index (the figure's ``customdata``) and that candidate loads into the editor, as a row of the front
table (still there) does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import plotly

from ..latency.profiles import list_profiles
from . import search_callbacks as sc
from .state import session_key
from .training_callbacks import DATASETS

__all__ = ["FRONT_JS", "FRONT_TEMPLATE", "PLOTLY_JS", "build_search_tab", "build_searches_panel"]

#: plotly.js as the plotly package ships it (the version the figures are made for)
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
FRONT_TEMPLATE = '<div class="sf-plot" style="height: 420px; width: 100%;"></div>'
#: draws the figure JSON (``props.value``); loads plotly.js once, asynchronously, the first time it is needed
FRONT_JS = """
const src = '/gradio_api/file=__PLOTLY_JS__';
function load() {
  if (typeof Plotly !== 'undefined' || document.getElementById('sf-plotly')) return;
  const s = document.createElement('script');
  s.id = 'sf-plotly'; s.src = src; s.async = true;
  document.head.appendChild(s);
}
function draw() {
  if (!props.value || typeof props.value !== 'string') return true;
  if (typeof Plotly === 'undefined') { load(); return false; }
  const fig = JSON.parse(props.value);
  const div = element.querySelector('.sf-plot');
  Plotly.react(div, fig.data, fig.layout, {responsive: true, displaylogo: false});
  if (!div._sfClick) {
    div._sfClick = true;
    div.on('plotly_click', (ev) => {
      const p = ev && ev.points && ev.points[0];
      if (!p || p.customdata === undefined || p.customdata === null) return;  // a preset: not a candidate
      div.dataset.clicked = String(p.customdata);
      trigger('select', {index: p.customdata});
    });
  }
  div.dataset.draws = String(Number(div.dataset.draws || 0) + 1);
  return true;
}
function start(tries) {
  if (draw()) return;
  if (tries > 0) setTimeout(() => start(tries - 1), 50);
}
watch('value', () => start(400));
start(400);
""".replace("__PLOTLY_JS__", str(PLOTLY_JS))

HELP = """\
Machine-driven design exploration, as in the paper: regularised evolution from the current design
with the Design tab's mutations, picking parents by Pareto rank (NSGA-II order) on two or three
objectives. Designs that break a budget or a best-practice rule are rejected. Accuracy is measured by
short training on a proxy task; only the promising designs are trained longer (successive halving:
each rung trains *eta* times longer). Every candidate is stored as it is evaluated (History tab);
**Stop** keeps them all and **Resume** continues the search named in *search id* without evaluating
any of them again (a finished search is extended to the budget set here).
"""

#: the outputs every start / poll / resume may set, in this order
_LIVE = ("progress", "front_chart", "hv_chart", "front_table", "pick", "search_id", "polling")


def _live_values(out: dict[str, Any]) -> list[Any]:
    values: list[Any] = []
    for name in _LIVE:
        if name not in out:
            values.append(gr.skip())
        elif name == "pick":
            values.append(gr.update(choices=out["pick"]["choices"], value=out["pick"]["value"]))
        elif name == "polling":
            values.append(gr.Timer(active=bool(out["polling"])))
        elif name == "front_chart":  # the clickable front draws the figure's JSON
            values.append(out[name].to_json())
        elif name == "search_id":
            values.append("" if out["search_id"] is None else str(out["search_id"]))
        else:
            values.append(out[name])
    return values


def build_search_tab(spec_yaml: gr.State, editor: gr.Code, compare: Any = None) -> None:
    """Lay out the search panel inside the open tab and wire it to ``search_callbacks``.

    ``compare`` (the Design tab's ``CompareWiring``), when given, adds "Pin as baseline" for the picked candidate.
    """
    task = sc.TASK
    gr.set_static_paths([PLOTLY_JS])  # the front's plotly.js, from the plotly package (never a CDN)
    gr.Markdown(HELP)
    objectives = gr.CheckboxGroup(sc.OBJECTIVE_CHOICES, value=["accuracy", "latency"],
                                  label="objectives (tick two or three)", elem_id="search-objectives")
    with gr.Row():
        # text boxes: an empty one reads "no limit" (a gr.Number shows an empty value as 0)
        max_params = gr.Textbox("", label="max params (M)", placeholder="no limit", elem_id="search-max-params")
        max_gmacs = gr.Textbox("", label="max GMACs", placeholder="no limit", elem_id="search-max-macs")
        max_peak = gr.Textbox("", label="max peak activations (MiB)", placeholder="no limit",
                              elem_id="search-max-peak")
        max_latency = gr.Textbox("", label="max latency (ms)", placeholder="no limit", elem_id="search-max-latency")
    with gr.Row(equal_height=True):
        latency_source = gr.Radio(sc.LATENCY_SOURCES, value="predict", label="latency",
                                  elem_id="search-latency-source", scale=2)
        device = gr.Dropdown(list_profiles(), value="host", label="device profile (for predicted latency)",
                             elem_id="search-device", scale=1)
        with gr.Column(scale=1, min_width=200):
            antialias = gr.Checkbox(True, label="require anti-aliased downsampling", elem_id="search-antialias")
            early = gr.Checkbox(True, label="require attention condensers early", elem_id="search-early")
    with gr.Row(equal_height=True):  # latency measured on the board: the Latency tab's allowed-board rules
        board_host = gr.Textbox("", label="board host (for latency measured on the board)", placeholder="no board",
                                elem_id="search-board-host", scale=2)
        board_port = gr.Number(sc.BOARD_PORT, label="board port", precision=0, elem_id="search-board-port", scale=1)
        board_token = gr.Textbox("", label="agent token", type="password", elem_id="search-board-token", scale=1)
    with gr.Accordion("Proxy task (how accuracy is measured) and budget", open=True):
        with gr.Row():
            dataset = gr.Dropdown(DATASETS, value=task.dataset, label="proxy dataset", elem_id="search-dataset")
            input_size = gr.Number(task.input_size, label="proxy input size", precision=0,
                                   elem_id="search-input")
            train_steps = gr.Number(task.steps, label="training steps (cheapest rung)", precision=0,
                                    elem_id="search-train-steps")
            rungs = gr.Number(task.rungs, label="rungs", precision=0, elem_id="search-rungs")
            eta = gr.Number(task.eta, label="eta", precision=0, elem_id="search-eta")
        with gr.Row(equal_height=True):
            budget_kind = gr.Radio(sc.BUDGET_KINDS, value="candidates", label="budget in",
                                   elem_id="search-budget-kind")
            budget = gr.Number(30, label="budget (new candidates, or minutes)", elem_id="search-budget")
            seed = gr.Number(0, label="seed", precision=0, elem_id="search-seed")
            presets = gr.Checkbox(True, label="show the presets as reference points (trained once per settings)",
                                  elem_id="search-presets")
    with gr.Row(equal_height=True):
        run_btn = gr.Button("Search", variant="primary", elem_id="search-run", scale=2)
        stop_btn = gr.Button("Stop", variant="stop", elem_id="search-stop", scale=1)
        search_id = gr.Textbox("", label="search id", elem_id="search-id", scale=1,
                               placeholder="the search shown (or a stored one)")
        resume_btn = gr.Button("Resume", elem_id="search-resume", scale=1)
    progress = gr.HTML(sc.progress_html(None), elem_id="search-progress")
    with gr.Row():
        with gr.Column(scale=3):  # the front; a click on a point loads that candidate
            front_chart = gr.HTML("", html_template=FRONT_TEMPLATE, js_on_load=FRONT_JS, elem_id="search-front")
        with gr.Column(scale=2):
            hv_chart = gr.Plot(label="hypervolume", elem_id="search-hv")
    front_table = gr.Dataframe(headers=sc.FRONT_HEADERS, interactive=False, elem_id="search-front-table",
                               label="the front, best in the first objective first (click a row to load it)",
                               max_height=320)
    with gr.Row(equal_height=True):
        pick = gr.Dropdown([], label="candidate (the front first)", elem_id="search-pick", scale=4,
                           interactive=True)
        load_btn = gr.Button("Load into editor", variant="primary", elem_id="search-load", scale=1)
        pin_btn = gr.Button("Pin as baseline", elem_id="search-pin", scale=1, visible=compare is not None)
    status = gr.Markdown("", elem_id="search-status")
    timer = gr.Timer(1.0, active=False)

    form = [objectives, max_params, max_gmacs, max_peak, max_latency, latency_source, device, antialias, early,
            dataset, input_size, train_steps, rungs, eta, budget_kind, budget, seed, presets, board_host, board_port,
            board_token]
    live = [progress, front_chart, hv_chart, front_table, pick, search_id, timer]

    # each handler bears its callback's name, which is its endpoint in the Gradio API
    def on_start_search(request: gr.Request, spec: str, *values: Any) -> list[Any]:
        return _live_values(sc.on_start_search(spec, *values, session=session_key(request)))

    def on_poll_search(request: gr.Request) -> list[Any]:
        return _live_values(sc.on_poll_search(session_key(request)))

    def on_stop_search(request: gr.Request) -> Any:
        return sc.on_stop_search(session_key(request))["progress"]

    def on_resume_search(sid: Any, kind: str, amount: Any, request: gr.Request) -> list[Any]:
        return _live_values(sc.on_resume_search(sid, kind, amount, session=session_key(request)))

    def on_load_candidate(sid: Any, index: Any) -> tuple[Any, Any]:
        out = sc.on_load_candidate(sid, index)
        return out["status"], out.get("editor", gr.skip())

    def on_click_front_point(sid: Any, evt: gr.EventData) -> tuple[Any, Any, Any]:
        index = (evt._data or {}).get("index")
        out = sc.on_load_candidate(sid, index)
        return out["status"], out.get("editor", gr.skip()), index if index is not None else gr.skip()

    def on_select_front_row(sid: Any, evt: gr.SelectData) -> tuple[Any, Any, Any]:
        row = getattr(evt, "row_value", None) or []
        index = row[0] if row else None
        out = sc.on_load_candidate(sid, index)
        return out["status"], out.get("editor", gr.skip()), index if index is not None else gr.skip()

    run_btn.click(on_start_search, [spec_yaml, *form], live, concurrency_limit=4, concurrency_id="search",
                  show_progress="hidden")
    timer.tick(on_poll_search, None, live, concurrency_limit=None, show_progress="hidden")
    stop_btn.click(on_stop_search, None, progress, concurrency_limit=None, show_progress="hidden")
    resume_btn.click(on_resume_search, [search_id, budget_kind, budget], live, concurrency_limit=4,
                     concurrency_id="search", show_progress="hidden")
    load_btn.click(on_load_candidate, [search_id, pick], [status, editor])
    front_table.select(on_select_front_row, [search_id], [status, editor, pick])
    front_chart.select(on_click_front_point, [search_id], [status, editor, pick])
    if compare is not None:  # the picked candidate (a clicked front row picks it too) becomes the baseline
        compare.pin_from(pin_btn.click, sc.on_pin_candidate, [search_id, pick], status)


def build_searches_panel(editor: gr.Code) -> None:
    """The History tab's stored searches: the list, one search's candidates and front, load a candidate."""
    gr.Markdown("### Searches")
    searches_table = gr.Dataframe(headers=sc.SEARCH_HEADERS, interactive=False, elem_id="hist-searches",
                                  label="stored searches (newest first)", max_height=300)
    with gr.Row(equal_height=True):
        picked = gr.Dropdown([], label="search", elem_id="hist-pick-search", scale=3, interactive=True)
        refresh_btn = gr.Button("Refresh searches", elem_id="hist-refresh-searches", scale=1)
    status = gr.Markdown("", elem_id="hist-search-status")
    with gr.Row():
        front_chart = gr.Plot(label="its front", elem_id="hist-search-front", scale=3)
        hv_chart = gr.Plot(label="its hypervolume", elem_id="hist-search-hv", scale=2)
    candidates = gr.Dataframe(headers=sc.CANDIDATE_HEADERS, interactive=False, elem_id="hist-search-candidates",
                              label="its candidates", max_height=320)
    with gr.Row(equal_height=True):
        pick = gr.Dropdown([], label="candidate (the front first)", elem_id="hist-search-pick", scale=4,
                           interactive=True)
        load_btn = gr.Button("Load into editor", variant="primary", elem_id="hist-search-load", scale=1)

    def on_refresh_searches() -> tuple[Any, Any]:
        out = sc.on_refresh_searches()
        return out["searches_table"], gr.update(choices=out["search_choices"])

    def on_pick_search(sid: Any) -> tuple[Any, ...]:
        out = sc.on_pick_search(sid)
        return (out["status"], out["front_chart"], out["hv_chart"], out.get("candidates_table", []),
                gr.update(choices=out["pick"]["choices"], value=out["pick"]["value"]))

    def on_load_stored_candidate(sid: Any, index: Any) -> tuple[Any, Any]:
        out = sc.on_load_candidate(sid, index)
        return out["status"], out.get("editor", gr.skip())

    refresh_btn.click(on_refresh_searches, None, [searches_table, picked])
    picked.input(on_pick_search, [picked], [status, front_chart, hv_chart, candidates, pick])
    load_btn.click(on_load_stored_candidate, [picked, pick], [status, editor])
    parent = gr.context.Context.block
    while parent is not None and not isinstance(parent, gr.Tab):
        parent = getattr(parent, "parent", None)
    if parent is not None:
        parent.select(on_refresh_searches, None, [searches_table, picked])
