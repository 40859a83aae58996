"""The latency tab: measure the current design here or on a board, or predict it for a device.

Only layout and wiring; every callback is a plain function of ``explorer.ui.latency_callbacks``.
``build_latency_tab(spec_yaml)`` is called by ``explorer.ui.app`` inside an open ``gr.Tab``;
``spec_yaml`` is the ``gr.State`` holding the current valid design as YAML text.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from . import latency_callbacks as lc
from .render import gradio_progress

__all__ = ["build_latency_tab"]

HELP = """\
Measure the current design in ONNX Runtime (batch 1, reparameterised, warm-up then timed runs:
median, p90, coefficient of variation), on this machine or on a board running the agent
(`explorer agent --token T`, or `python3 agent.py --token T` on a Raspberry Pi: see the README;
the server contacts only the boards allowed where it runs: 127.0.0.1:8765, `$EXPLORER_BOARDS` and
`explorer ui --board HOST:PORT`), or predict it with a device profile's calibrated roofline.
Tick *compare with presets* to place the design among the presets on the chart (each preset is
measured once per setting, then cached).
"""


def build_latency_tab(spec_yaml: gr.State) -> None:
    """Lay out the latency panel inside the open tab and wire it to ``latency_callbacks``."""
    gr.Markdown(HELP)
    with gr.Row():
        runs = gr.Number(50, label="timed runs", precision=0, minimum=1, maximum=10_000, elem_id="lat-runs")
        threads = gr.Number(1, label="threads", precision=0, minimum=1, maximum=256, elem_id="lat-threads")
        compare = gr.Checkbox(True, label="compare with presets", elem_id="lat-compare")
    with gr.Row():
        with gr.Column():
            local_btn = gr.Button("Measure locally", variant="primary", elem_id="lat-local")
        with gr.Column():
            with gr.Row():
                host = gr.Textbox("127.0.0.1", label="board host", elem_id="lat-host")
                port = gr.Number(8765, label="port", precision=0, minimum=1, maximum=65535, elem_id="lat-port")
                token = gr.Textbox("", label="token", type="password", elem_id="lat-token")
            board_btn = gr.Button("Measure on board", elem_id="lat-board")
        with gr.Column():
            choices = lc.profile_choices()
            profile = gr.Dropdown(choices, value=lc.PROFILE_DEFAULT if lc.PROFILE_DEFAULT in choices else None,
                                  label="device profile", elem_id="lat-profile", allow_custom_value=False)
            predict_btn = gr.Button("Predict for profile", elem_id="lat-predict")
    status = gr.Markdown("", elem_id="lat-status")
    chart = gr.Plot(label="latency vs MACs", elem_id="lat-chart")
    table = gr.Dataframe(headers=lc.TABLE_HEADERS, interactive=False, label="predicted time per unit",
                         elem_id="lat-table", max_height=360)
    outputs = [status, chart, table]

    def show(result: dict[str, Any]) -> tuple[Any, Any, Any]:
        return (result["status"], result["chart"] if result["chart"] is not None else gr.skip(),
                result["table"] if result["table"] else gr.skip())

    # each handler bears its callback's name, which is its endpoint in the Gradio API
    def on_measure_local(spec: str, n_runs: Any, n_threads: Any, with_presets: bool,
                         progress: gr.Progress = gr.Progress()) -> tuple[Any, Any, Any]:
        return show(lc.on_measure_local(spec, n_runs, n_threads, with_presets, progress=gradio_progress(progress)))

    def on_measure_board(spec: str, board_host: str, board_port: Any, board_token: str, n_runs: Any, n_threads: Any,
                         with_presets: bool, progress: gr.Progress = gr.Progress()) -> tuple[Any, Any, Any]:
        return show(lc.on_measure_board(spec, board_host, board_port, board_token, n_runs, n_threads, with_presets,
                                        progress=gradio_progress(progress)))

    def on_predict(spec: str, profile_name: str, with_presets: bool,
                   progress: gr.Progress = gr.Progress()) -> tuple[Any, Any, Any]:
        return show(lc.on_predict(spec, profile_name, with_presets, progress=gradio_progress(progress)))

    latency: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "latency"}
    local_btn.click(on_measure_local, [spec_yaml, runs, threads, compare], outputs, **latency)
    board_btn.click(on_measure_board, [spec_yaml, host, port, token, runs, threads, compare], outputs, **latency)
    predict_btn.click(on_predict, [spec_yaml, profile, compare], outputs, **latency)
