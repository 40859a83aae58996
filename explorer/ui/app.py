"""The Gradio explorer: design a backbone in the browser, with its numbers after every edit.

This file only lays out components and wires them to the callbacks of
``explorer.ui.callbacks`` (named ``on_<action>``, as in every tab; each handler keeps its
callback's name, the endpoint's name in the Gradio API), which return ``{output name: value}``;
``_Outputs`` maps those names to components (names left out are not updated). The current valid
design lives in ``spec_yaml`` (a ``gr.State`` of YAML text) that the other tabs (latency,
training, history, search) receive; the history and search tabs load a design by setting the
YAML editor, whose ``change`` event validates it like any typed edit.

``launch(host, port)`` serves on 127.0.0.1 unless another address is asked for, with uploads
limited to the spec size limit and the queue on: edits of different sessions run side by side
(``EDIT_SLOTS`` at once), the edits of one session one at a time and in order
(``explorer.ui.sessions``), and every count in a worker process cut at a time bound
(``explorer.ui.worker``), so one huge edit holds one worker, never the other sessions.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

import gradio as gr

from ..analysis_cache import preset_analysis
from ..edit import palette
from ..history import History
from ..link import read_query
from ..mutate import MUTATIONS
from ..presets import list_presets
from ..spec import MAX_SPEC_BYTES, SpecError
from ..store import StoreError
from . import callbacks as cb
from . import report_callbacks as report_cb
from .compare_tab import COMPARE_CSS, build_compare_tab
from .designs import install_keeper
from .designs_tab import build_designs_tab
from .forms import FORM_SLOTS, slot_keys
from .graph_callbacks import on_select_graph_node
from .graph_view import GRAPH_CSS, GRAPH_JS, GRAPH_PAGE_CSS, GRAPH_TEMPLATE, graph_head, register_static
from .history_tab import build_history_tab
from .latency_tab import build_latency_tab
from .quick_skip import install as install_quick_skip
from .render import TABLE_HEADERS, gradio_progress
from .search_tab import build_search_tab
from .sessions import SessionGate
from .state import session_key, session_rng
from .training_callbacks import ui_store
from .training_tab import build_training_tab
from .worker import AnalysisPool, remember_analysis
from .worker import install as install_analysis_pool

__all__ = ["CSS", "build_app", "launch"]

CSS = """
.metrics {display: flex; gap: 10px; flex-wrap: wrap;}
.metric {flex: 1 1 150px; border: 1px solid var(--border-color-primary); border-radius: 8px;
         padding: 8px 12px; background: var(--background-fill-secondary);}
.metric .label {font-size: 12px; color: var(--body-text-color-subdued); text-transform: uppercase;}
.metric .value {font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums;}
.metric .delta {font-size: 12px; font-variant-numeric: tabular-nums;}
.metric .delta.up {color: #b45309;} .metric .delta.down {color: #047857;}
.metrics-note {font-size: 12px; color: var(--body-text-color-subdued); margin-top: 4px;}
.error-box {border: 1px solid #dc2626; background: #fef2f2; color: #991b1b; border-radius: 6px;
            padding: 6px 10px; font-size: 13px;}
.error-box ul {margin: 4px 0 0 18px; padding: 0;}
#status {font-size: 13px; min-height: 1.4em;}
#status .ok {color: #047857; font-weight: 700;} #status .bad {color: #dc2626; font-weight: 700;}
.mut-row button {min-width: 0 !important;}
.hidden-box {display: none !important;}
footer {display: none !important;}
""" + GRAPH_PAGE_CSS + COMPARE_CSS

INTRO = """\
# AttendNeXt Explorer
Design an efficient vision backbone from the block library: start from a preset, mutate it, edit
blocks in the form or the whole spec as YAML. Every edit is validated and counted at once
(params and MACs as fvcore counts them, at batch 1). Undo and redo keep every step.
"""


#: outputs shown in the first phase of every edit: the numbers, the status, the state and the graph
#: with its analyzer (built in about 5 ms, laid out in about 35 ms); the rest (charts, table, form,
#: editor, file) follow in a chained second phase, so the numbers and the graph appear without
#: waiting for the browser to redraw three plots and the table
FAST_OUTPUTS = frozenset({
    "spec_yaml", "history", "metrics", "status", "edit_error", "yaml_error", "undo_btn", "redo_btn", "draft",
    "draft_note", "download",  # "Save YAML" right after an edit must save that edit
    "graph", "warnings",
})

#: the states an edit reads and returns: a session's next edit gets what its last one returned
EDIT_STATES = ("spec_yaml", "history", "draft")
#: edits (of different sessions) handled at once; a session's own run one at a time (``SessionGate``)
EDIT_SLOTS = 16
#: second phases (the redraw of charts, table and form) handled at once
REDRAW_SLOTS = 16


class _Outputs:
    """Name -> component map; turns a callback's ``{name: value}`` into Gradio's ``{component: value}``.

    An edit is shown in two phases: ``split`` returns the fast outputs at once and parks the
    others in the ``pending`` state; ``flush`` (chained with ``.then``) shows them.
    """

    def __init__(self) -> None:
        self.by_name: dict[str, Any] = {}
        self.pending: Any = None

    def add(self, name: str, component: Any) -> Any:
        self.by_name[name] = component
        return component

    @property
    def fast(self) -> list[Any]:
        return [c for n, c in self.by_name.items() if n in FAST_OUTPUTS] + [self.pending]

    @property
    def slow(self) -> list[Any]:
        return [c for _, c in self._slow_items()]

    def split(self, result: dict[str, Any]) -> dict[Any, Any]:
        fast = {self.by_name[k]: v for k, v in result.items() if k in self.by_name and k in FAST_OUTPUTS}
        rest = {k: v for k, v in result.items() if k in self.by_name and k not in FAST_OUTPUTS}
        return {**fast, self.pending: rest}

    def flush(self, rest: dict[str, Any] | None) -> list[Any]:
        """The parked values in ``slow`` order; ``gr.skip()`` leaves a component as it is."""
        rest = rest or {}
        return [rest[n] if n in rest else gr.skip() for n, _ in self._slow_items()]

    def _slow_items(self) -> list[tuple[str, Any]]:
        return [(n, c) for n, c in self.by_name.items() if n not in FAST_OUTPUTS]


def build_app() -> gr.Blocks:
    """The whole explorer as a ``gr.Blocks`` (not launched)."""
    register_static()  # the graph view's JavaScript, shipped in explorer/ui/static/
    install_quick_skip()  # a gr.skip() output costs Gradio nothing (``explorer.ui.quick_skip``)
    init = cb.initial_values()
    out = _Outputs()
    presets = list_presets()

    with gr.Blocks(title="AttendNeXt Explorer", analytics_enabled=False) as demo:
        spec_yaml = out.add("spec_yaml", gr.State(init["spec_yaml"]))
        history = out.add("history", gr.State(init["history"]))
        draft = out.add("draft", gr.State(""))
        out.pending = gr.State({})

        gr.Markdown(INTRO)
        with gr.Row(equal_height=True):
            # an output too: it names the preset the design is, and is empty when the design is none
            preset = out.add("preset", gr.Dropdown(presets, value=init["preset"], label="Start from a preset",
                                                   elem_id="preset", scale=3, interactive=True))
            empty_btn = gr.Button("Empty design", elem_id="new-empty", scale=1)
            undo_btn = out.add("undo_btn", gr.Button("↶ Undo", elem_id="undo", scale=1, interactive=False))
            redo_btn = out.add("redo_btn", gr.Button("↷ Redo", elem_id="redo", scale=1, interactive=False))
            random_btn = gr.Button("Random valid mutation", elem_id="random-mutation", scale=2, variant="primary")
            out.add("download", gr.DownloadButton("⬇ Save YAML", value=init["download"], elem_id="download",
                                                  scale=1))
            # not among every edit's outputs: only its own event clears it (Gradio rebuilds every output
            # component an event names, even one it skips, and this one costs ~15 ms each time)
            upload = gr.UploadButton("⬆ Load YAML", file_types=[".yaml", ".yml", ".json"], file_count="single",
                                     type="filepath", elem_id="upload", scale=1)
        out.add("metrics", gr.HTML(init["metrics"], elem_id="metrics"))
        out.add("status", gr.HTML(init["status"], elem_id="status"))
        baseline_note = gr.HTML("", elem_id="baseline-note")  # changes against a pinned baseline (Compare)
        with gr.Row(equal_height=True):
            copy_btn = gr.Button("Copy link", elem_id="copy-link", size="sm", scale=0, min_width=120)
            link_shown = gr.Textbox("", show_label=False, container=False, elem_id="link-shown", scale=5, lines=1,
                                    max_lines=1,
                                    placeholder="Copy link puts a link to this design and block here and on the "
                                                "clipboard; the address bar always carries it too (reload keeps it)",
                                    interactive=False)
            report_btn = gr.Button("⬇ Download report", elem_id="report-btn", size="sm", scale=0, min_width=160)
        report_file = gr.File(label="Design report (HTML, opens offline)", elem_id="report-file", interactive=False,
                              visible=False)
        # the page URL's query for the design and block shown (``explorer.link``); its change updates the
        # address bar (history.replaceState), so a reload or a copied address reopens them
        link = out.add("link", gr.Textbox("", elem_id="page-link", elem_classes="hidden-box", show_label=False,
                                          container=False, interactive=False))

        with gr.Tabs(elem_id="main-tabs"):
            with gr.Tab("Design", id="design"):
                # the design as a graph (click a node to edit its block; its inside is shown beside), and the
                # analyzer's warnings beside it, as MATLAB's analyzer; a narrow window puts them under the graph
                with gr.Row(equal_height=False, elem_id="graph-row"):
                    with gr.Column(scale=4, min_width=560):
                        graph = out.add("graph", gr.HTML(
                            init["graph"], html_template=GRAPH_TEMPLATE, css_template=GRAPH_CSS, js_on_load=GRAPH_JS,
                            head=graph_head(), elem_id="design-graph"))
                    with gr.Column(scale=1, min_width=250, elem_id="warnings-column"):
                        out.add("warnings", gr.HTML(init["warnings"], elem_id="design-warnings"))
                with gr.Row():
                    with gr.Column(scale=3):
                        out.add("diagram", gr.Plot(init["diagram"], label="Architecture: stages and blocks",
                                                   elem_id="diagram"))
                        out.add("bars", gr.Plot(init["bars"], label="Per-block MACs and params", elem_id="bars"))
                        out.add("scatter", gr.Plot(init["scatter"], label="MACs vs params, among the presets",
                                                   elem_id="scatter"))
                    with gr.Column(scale=2), gr.Tabs(elem_id="edit-tabs"):
                        with gr.Tab("Edit", id="edit"):
                            # a value an edit just removed may still be on its way back from the browser:
                            # the callbacks check it (``selected_ref``), so Gradio need not refuse it
                            picker = out.add("picker", gr.Dropdown(
                                choices=init["picker"]["choices"], value=init["picker"]["value"],
                                label="Block", elem_id="block-picker", interactive=True, allow_custom_value=True))
                            out.add("edit_error", gr.HTML("", elem_id="edit-error"))
                            gr.Markdown("**Mutate** (stage buttons act on the selected block's stage)")
                            mut_buttons = {}
                            names = list(MUTATIONS)
                            for row_start in range(0, len(names), 4):
                                with gr.Row(elem_classes="mut-row"):
                                    for name in names[row_start:row_start + 4]:
                                        mut_buttons[name] = gr.Button(MUTATIONS[name].label, size="sm",
                                                                      elem_id=f"mut-{name}", min_width=60)
                            with gr.Accordion("Parameters of the block", open=True):
                                out.add("form_title", gr.Markdown(init["form_title"], elem_id="form-title"))
                                form_slots: list[Any] = []
                                for pair in range(0, FORM_SLOTS, 2):
                                    with gr.Row(equal_height=False):
                                        for i in range(pair, min(pair + 2, FORM_SLOTS)):
                                            with gr.Column(min_width=160):
                                                form_slots += _slot(out, i, init)
                                out.add("form_error", gr.HTML("", elem_id="form-error"))
                                apply_btn = gr.Button("Apply parameters", variant="primary", elem_id="apply-form")
                            with gr.Accordion("Structure: add, remove, move", open=True):
                                block_palette = gr.Dropdown(
                                    choices=palette(), value="dwsep",
                                    label="Block palette", elem_id="palette", interactive=True)
                                with gr.Row():
                                    add_btn = gr.Button("Add after selected", size="sm", elem_id="add-block")
                                    replace_btn = gr.Button("Change type", size="sm", elem_id="replace-block")
                                    remove_btn = gr.Button("Remove block", size="sm", elem_id="remove-block",
                                                           variant="stop")
                                with gr.Row():
                                    up_btn = gr.Button("Move up", size="sm", elem_id="move-up")
                                    down_btn = gr.Button("Move down", size="sm", elem_id="move-down")
                                    add_stage_btn = gr.Button("Add stage after", size="sm", elem_id="add-stage")
                                    remove_stage_btn = gr.Button("Remove stage", size="sm",
                                                                 elem_id="remove-stage", variant="stop")
                                with gr.Row(equal_height=True):
                                    stage_name = out.add("stage_name", gr.Textbox(
                                        elem_id="stage-name", scale=3, **_props(init["stage_name"])))
                                    stage_repeat = out.add("stage_repeat", gr.Number(
                                        elem_id="stage-repeat", scale=1, precision=0,
                                        **_props(init["stage_repeat"])))
                                    stage_btn = gr.Button("Apply stage", size="sm", elem_id="apply-stage",
                                                          scale=1)
                        with gr.Tab("YAML", id="yaml", elem_id="yaml-tab"):
                            out.add("yaml_error", gr.HTML("", elem_id="yaml-error"))
                            editor = out.add("editor", gr.Code(
                                init["editor"], language="yaml", label="The whole design (edits apply as you type)",
                                elem_id="yaml-editor", lines=30, max_lines=60, interactive=True))
                            with gr.Row():
                                out.add("draft_note", gr.Markdown("", elem_id="draft-note"))
                                restore_btn = gr.Button("Restore draft", size="sm", elem_id="restore-draft",
                                                        scale=0)
                        with gr.Tab("Compare", id="compare", elem_id="compare-tab"):
                            compare = build_compare_tab(spec_yaml, baseline_note)
                table = out.add("table", gr.Dataframe(
                    init["table"], headers=TABLE_HEADERS, interactive=False, elem_id="block-table",
                    label="Units in execution order (click a row to edit its block)", max_height=420))
            with gr.Tab("Latency", id="latency"):
                build_latency_tab(spec_yaml)
            with gr.Tab("Training", id="training"):
                build_training_tab(spec_yaml)
            with gr.Tab("History", id="history"):
                build_history_tab(spec_yaml, editor, compare)
            with gr.Tab("Search", id="search"):
                build_search_tab(spec_yaml, editor, compare)
            with gr.Tab("My designs", id="my-designs"):
                build_designs_tab(editor, compare)

        # ------------------------------------------------------------------ wiring
        edit_in = [spec_yaml, history, picker, draft]
        edit_queue = dict(concurrency_id="edit", concurrency_limit=EDIT_SLOTS)
        redraw_queue = dict(concurrency_id="redraw", concurrency_limit=REDRAW_SLOTS)
        fast, slow = out.fast, out.slow
        gate = SessionGate()

        def forget_session(request: gr.Request) -> None:  # the page was closed: drop what the gate kept
            gate.forget(session_key(request))

        demo.unload(forget_session)

        def flush(rest: dict[str, Any] | None, request: gr.Request) -> list[Any]:
            """The parked views, less what this session's page already shows (``SessionGate.unchanged_skipped``)."""
            return out.flush(gate.unchanged_skipped(session_key(request), rest or {}))

        def slots(inputs: list[Any]) -> dict[str, int]:
            """Where the edit states sit among an event's inputs (name -> position)."""
            return {name: i for name in EDIT_STATES for i, c in enumerate(inputs) if c is out.by_name[name]}

        def gated(fn: Callable[..., dict[str, Any]], inputs: list[Any]) -> Callable[..., dict[Any, Any]]:
            """A Gradio handler running ``fn`` through the session gate (Gradio passes the request first)."""
            where = slots(inputs)

            def handler(request: gr.Request, *args: Any) -> dict[Any, Any]:
                return out.split(gate.run(session_key(request), fn, args, where))

            handler.__name__ = getattr(fn, "__name__", "handler")
            handler.__doc__ = fn.__doc__
            return handler

        def on(trigger: Callable[..., Any], handler: Callable[..., Any], inputs: list[Any], own: tuple[Any, ...] = (),
               **extra: Any) -> None:
            """Wire ``handler`` (numbers first, with its ``own`` outputs) and chain the redraw of the other views."""
            extra = {"show_progress": "hidden", **extra}
            compare.chain(trigger(handler, inputs, outputs=[*fast, *own], **edit_queue, **extra).then(
                flush, [out.pending], slow, show_progress="hidden", **redraw_queue))

        def edit(trigger: Callable[..., Any], fn: Callable[..., dict[str, Any]], inputs: list[Any],
                 **extra: Any) -> None:
            """``on`` for a callback taking the event's inputs as they are."""
            on(trigger, gated(fn, inputs), inputs, **extra)

        # handlers that need Gradio's own arguments (progress, the clicked row) bear their callback's name
        def on_load_preset(name: str, spec: str, hist: History | None, kept: str, request: gr.Request,
                           progress: gr.Progress = gr.Progress()) -> dict:
            return out.split(gate.run(session_key(request), cb.on_load_preset, [name, spec, hist, kept],
                                      slots([preset, spec_yaml, history, draft]), progress=gradio_progress(progress)))

        def on_upload(path: str | None, spec: str, hist: History | None, kept: str, request: gr.Request,
                      progress: gr.Progress = gr.Progress()) -> dict:
            result = gate.run(session_key(request), cb.on_upload, [path, spec, hist, kept],
                              slots([upload, spec_yaml, history, draft]), progress=gradio_progress(progress))
            return {**out.split(result), upload: result.get("upload", gr.skip())}

        def on_select_row(spec: str, evt: gr.SelectData, request: gr.Request) -> dict:
            row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            return out.split(gate.run(session_key(request), cb.on_select_row, [int(row), spec], {"spec_yaml": 1}))

        def on_open_link(spec: str, hist: History | None, kept: str, request: gr.Request) -> dict:
            opened = read_query(dict(request.query_params or {}))
            return out.split(gate.run(session_key(request), cb.on_open_link, [opened, spec, hist, kept],
                                      {"spec_yaml": 1, "history": 2, "draft": 3}))

        def on_random_mutate(spec: str, hist: History | None, selected: str, kept: str, request: gr.Request) -> dict:
            key = session_key(request)
            return out.split(gate.run(key, cb.on_random_mutate, [spec, hist, selected, kept], slots(edit_in),
                                      rng=session_rng(key)))

        on(demo.load, on_open_link, [spec_yaml, history, draft])

        def on_report(spec: str, progress: gr.Progress = gr.Progress()) -> Any:
            return report_cb.on_report(spec, gradio_progress(progress))["report_file"]

        report_btn.click(on_report, [spec_yaml], [report_file], concurrency_id="report", concurrency_limit=2,
                         show_progress="minimal").then(None, None, None, js=CLICK_REPORT_JS, queue=False)
        link.change(None, [link], None, js=REPLACE_URL_JS, queue=False)
        copy_btn.click(None, None, [link_shown], js=COPY_LINK_JS, queue=False)
        on(preset.input, on_load_preset, [preset, spec_yaml, history, draft], show_progress="minimal")
        on(upload.upload, on_upload, [upload, spec_yaml, history, draft], own=(upload,), show_progress="minimal")
        edit(empty_btn.click, cb.on_new_empty, [spec_yaml, history, draft])
        edit(undo_btn.click, cb.on_undo, edit_in)
        edit(redo_btn.click, cb.on_redo, edit_in)
        on(random_btn.click, on_random_mutate, edit_in)
        for name, button in mut_buttons.items():
            edit(button.click, _bind(cb.on_mutate, name), edit_in)
        edit(picker.input, cb.on_select_block, [picker, spec_yaml])
        on(table.select, on_select_row, [spec_yaml])

        def on_select_graph(spec: str, evt: gr.EventData, request: gr.Request) -> dict:
            key = str((evt._data or {}).get("key") or "")
            return out.split(gate.run(session_key(request), on_select_graph_node, [key, spec], {"spec_yaml": 1}))

        on_select_graph.__name__ = "on_select_graph_node"
        on(graph.select, on_select_graph, [spec_yaml])
        # a block picked elsewhere (picker, table, an edit) is highlighted in the graph, in the page alone
        picker.change(None, [picker], None, js=HIGHLIGHT_JS, queue=False)
        edit(apply_btn.click, cb.on_apply_form, [*edit_in, *form_slots])
        edit(stage_btn.click, cb.on_apply_stage, [stage_name, stage_repeat, *edit_in])
        edit(add_btn.click, cb.on_add_block, [block_palette, *edit_in])
        edit(replace_btn.click, cb.on_replace_type, [block_palette, *edit_in])
        edit(remove_btn.click, cb.on_remove_block, edit_in)
        edit(up_btn.click, _bind(cb.on_move_block, -1, "up"), edit_in)
        edit(down_btn.click, _bind(cb.on_move_block, 1, "down"), edit_in)
        edit(add_stage_btn.click, cb.on_add_stage, [block_palette, *edit_in])
        edit(remove_stage_btn.click, cb.on_remove_stage, edit_in)
        edit(editor.change, cb.on_editor_change, [editor, spec_yaml, history, picker], trigger_mode="always_last")
        edit(restore_btn.click, cb.on_restore_draft, [draft])
    demo.output_names = (*out.by_name, "upload")  # read by the tests
    demo.spec_yaml_state = spec_yaml  # the current design's state: explorer.ui.notebook.show follows it
    return demo


#: the graph view highlights the picked block (``explorer.ui.graph_view`` leaves ``_gv`` on its canvas)
HIGHLIGHT_JS = """(key) => {
  const c = document.querySelector('#design-graph .gv-canvas');
  if (c && c._gv && typeof key === "string") c._gv.select(key);
  return [];
}"""
#: "Download report": once the new file's link is on the page (within 5 s), follow it so the browser downloads it
CLICK_REPORT_JS = """async () => {
  for (let i = 0; i < 50; i++) {
    const a = document.querySelector('#report-file a[download]');
    if (a && a.href !== window.__reportHref) { window.__reportHref = a.href; a.click(); return []; }
    await new Promise(r => setTimeout(r, 100));
  }
  return [];
}"""
#: the address bar follows the design: ``link`` holds the query (``?design=...&block=...``)
REPLACE_URL_JS = """(q) => {
  const query = typeof q === "string" && q.startsWith("?") ? q : "";
  if (location.search !== query) history.replaceState(history.state, "", location.pathname + query);
  return [];
}"""
#: "Copy link": the address (which carries the design) to the clipboard and into the box beside the button
COPY_LINK_JS = """() => {
  const url = location.href;
  if (navigator.clipboard) navigator.clipboard.writeText(url).catch(() => {});
  return url;
}"""


def _bind(fn: Callable[..., dict[str, Any]], first: Any, name: str = "") -> Callable[..., dict[str, Any]]:
    """``fn`` with its first argument fixed (a mutation name, a move offset), named ``<fn>_<name or first>``."""

    def bound(*args: Any) -> dict[str, Any]:
        return fn(first, *args)

    bound.__name__ = f"{fn.__name__}_{name or first}"
    bound.__doc__ = fn.__doc__
    return bound


def _slot(out: _Outputs, i: int, init: dict[str, Any]) -> list[Any]:
    """Form slot ``i``: a number box, a choice box and a switch; the field's kind shows one."""
    number_key, choice_key, check_key = slot_keys(i)
    return [
        out.add(number_key, gr.Number(elem_id=f"slot{i}-number", **_props(init[number_key]))),
        out.add(choice_key, gr.Dropdown(elem_id=f"slot{i}-choice", interactive=True, **_props(init[choice_key]))),
        out.add(check_key, gr.Checkbox(elem_id=f"slot{i}-check", interactive=True, **_props(init[check_key]))),
    ]


def _props(update: Any) -> dict[str, Any]:
    """Constructor keywords from a callback's ``gr.update`` (its first values)."""
    return {k: v for k, v in dict(update).items() if k != "__type__"}


def launch(host: str = "127.0.0.1", port: int = 7860, before_serving: Callable[[], None] | None = None) -> None:
    """Serve the explorer (blocking) on ``host:port``; 127.0.0.1 unless asked otherwise.

    ``before_serving`` runs right before Gradio binds the port (``explorer ui`` closes its start-up
    page there, ``explorer.ui.startup_page``).
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("GRADIO_RUN_HISTORY", "False")
    # Gradio's queue recomputes its event statistics (a pandas table of the last 10,000 events) after
    # every event by default: ~10 % of an edit's server time; every 1000 events is plenty (nothing here reads them)
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    pool = AnalysisPool()  # its workers import torch while the first page is built and counted here
    keeper = None
    try:
        warm_start()
        try:
            keeper = install_keeper(ui_store())  # "My designs": every design shown is kept in the store
        except StoreError as exc:
            print(f"warning: designs are not kept this time: {exc}", file=sys.stderr)
        demo = build_app()
        install_analysis_pool(pool)
        demo.queue(default_concurrency_limit=2)
        # Gradio's run history would copy every event's values (plots, tables) into the browser's
        # localStorage: it grows with each edit and slows every later one; the explorer has undo/redo
        accepted = inspect.signature(demo.launch).parameters
        extra: dict[str, Any] = {"run_history": False} if "run_history" in accepted else {}
        if "_frontend" in accepted:  # Gradio's own check is one 3-s request, which fails on a loaded machine
            extra["_frontend"] = False
        if before_serving is not None:
            before_serving()
        demo.launch(
            **extra,
            server_name=host,
            server_port=port,
            share=False,
            inbrowser=False,
            show_error=True,
            max_file_size=MAX_SPEC_BYTES,
            ssr_mode=False,
            css=CSS,
            footer_links=[],
            quiet=False,
        )
    finally:
        install_analysis_pool(None)
        if keeper is not None:
            install_keeper(None)
        pool.close()


def warm_start() -> None:
    """Answer the presets' counts from the disk cache (``explorer.analysis_cache``): no fvcore at launch.

    A preset counted by this code before is read back in milliseconds (without the size probe, see
    ``preset_analysis``); one that was not is checked and counted here once, and written for the next start.
    """
    for name in list_presets():
        try:
            remember_analysis(*preset_analysis(name))
        except SpecError:
            continue  # a broken preset file is reported where it is picked
