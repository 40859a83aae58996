"""The latency tab: measure the current design here or on a board, or predict it for a device.

Only layout and wiring; every callback is a plain function of ``explorer.ui.latency_callbacks``.
``build_latency_tab(spec_yaml)`` is called by ``explorer.ui.app`` inside an open ``gr.Tab``;
``spec_yaml`` is the ``gr.State`` holding the current valid design as YAML text.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from . import latency_callbacks as lc
from . import quantize_callbacks as qc
from .designs import record_latency
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
        runs = gr.Number(50, label="timed runs", precision=0, elem_id="lat-runs", info="1 to 10,000")
        threads = gr.Number(1, label="threads", precision=0, elem_id="lat-threads", info="1 to 256")
        compare = gr.Checkbox(True, label="compare with presets", elem_id="lat-compare")
    with gr.Row():
        with gr.Column():
            local_btn = gr.Button("Measure locally", variant="primary", elem_id="lat-local")
        with gr.Column():
            with gr.Row():
                host = gr.Textbox("127.0.0.1", label="board host", elem_id="lat-host")
                port = gr.Number(8765, label="port", precision=0, elem_id="lat-port")
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
    def measured(result: dict[str, Any], spec: str, profile_name: str | None, where: str) -> tuple[Any, Any, Any]:
        """A measurement: kept for the History tab; the per-unit table now predicts *this* design (or clears)."""
        if not result["result"]:
            return show(result)
        record_latency(spec, result["result"], where)
        predicted = lc.on_predict(spec, profile_name, False) if profile_name else {"table": []}
        return result["status"], result["chart"] if result["chart"] is not None else gr.skip(), predicted["table"]

    def on_measure_local(spec: str, n_runs: Any, n_threads: Any, with_presets: bool, profile_name: str | None,
                         progress: gr.Progress = gr.Progress()) -> tuple[Any, Any, Any]:
        result = lc.on_measure_local(spec, n_runs, n_threads, with_presets, progress=gradio_progress(progress))
        return measured(result, spec, profile_name, "this machine")

    def on_measure_board(spec: str, board_host: str, board_port: Any, board_token: str, n_runs: Any, n_threads: Any,
                         with_presets: bool, progress: gr.Progress = gr.Progress()) -> tuple[Any, Any, Any]:
        result = lc.on_measure_board(spec, board_host, board_port, board_token, n_runs, n_threads, with_presets,
                                     progress=gradio_progress(progress))
        return measured(result, spec, None, f"board {board_host}:{board_port}")

    def on_predict(spec: str, profile_name: str, with_presets: bool,
                   progress: gr.Progress = gr.Progress()) -> tuple[Any, Any, Any]:
        return show(lc.on_predict(spec, profile_name, with_presets, progress=gradio_progress(progress)))

    latency: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "latency"}
    local_btn.click(on_measure_local, [spec_yaml, runs, threads, compare, profile], outputs, **latency)
    board_btn.click(on_measure_board, [spec_yaml, host, port, token, runs, threads, compare], outputs, **latency)
    predict_btn.click(on_predict, [spec_yaml, profile, compare], outputs, **latency)

    # "Where the time goes": ONNX Runtime's profiler per op type and unit, fp32 beside int8
    gr.Markdown("### Where the time goes\nONNX Runtime's own profiler: kernel time per op type (after its fusions) "
                "and per unit, fp32 above, int8 below (static QDQ quantization calibrated on random inputs: right "
                "for timing, not for accuracy).")
    with gr.Row():
        prof_int8 = gr.Checkbox(True, label="int8 beside fp32", elem_id="lat-prof-int8")
        prof_btn = gr.Button("Profile", elem_id="lat-prof")
    prof_status = gr.Markdown("", elem_id="lat-prof-status")
    prof_chart = gr.Plot(label="kernel time by op type and unit", elem_id="lat-prof-chart")
    prof_table = gr.Dataframe(headers=lc.PROFILE_HEADERS, interactive=False, label="kernel ms per unit and op type",
                              elem_id="lat-prof-table", max_height=360)

    def on_profile(spec: str, with_int8: bool, n_runs: Any, n_threads: Any,
                   progress: gr.Progress = gr.Progress()) -> tuple[Any, Any, Any]:
        result = lc.on_profile(spec, with_int8, min(int(n_runs or 20), 50), n_threads,
                               progress=gradio_progress(progress))
        return (result["status"], result["chart"] if result["chart"] is not None else gr.skip(),
                result["table"] if result["table"] else gr.skip())

    prof_btn.click(on_profile, [spec_yaml, prof_int8, runs, threads], [prof_status, prof_chart, prof_table], **latency)

    # int8: quantize the design's trained network (explorer.ui.quantize_callbacks), fp32 beside int8
    with gr.Accordion("Quantize (int8)", open=False, elem_id="lat-quant"):
        gr.Markdown("Static int8 quantization in ONNX Runtime (QDQ, per-channel int8 weights, calibrated on 100 "
                    "training images) of this design's latest stored run, or of a short training run first; then "
                    "fp32 and int8 side by side on the validation split, timed here interleaved with 1 thread, "
                    "and on the board above (host, port, token) when ticked.")
        with gr.Row():
            quant_source = gr.Radio(list(qc.SOURCES), value=qc.SOURCES[0], label="weights from",
                                    elem_id="lat-quant-source")
            quant_steps = gr.Number(200, label="training steps (short training)", precision=0,
                                    elem_id="lat-quant-steps")
            quant_board = gr.Checkbox(False, label="also time on the board", elem_id="lat-quant-board")
            quant_btn = gr.Button("Quantize", elem_id="lat-quant-btn")
        quant_status = gr.Markdown("", elem_id="lat-quant-status")
        quant_table = gr.Dataframe(headers=qc.TABLE_HEADERS, interactive=False, label="fp32 and int8",
                                   elem_id="lat-quant-table")
        quant_file = gr.File(label="int8 ONNX file", interactive=False, elem_id="lat-quant-file")

    def on_quantize(spec: str, source: str, steps: Any, with_board: bool, board_host: str, board_port: Any,
                    board_token: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, Any, Any]:
        result = qc.on_quantize(spec, source, steps, progress=gradio_progress(progress), on_board=with_board,
                                host=board_host, port=board_port, token=board_token)
        return result["status"], result["table"] if result["table"] else gr.skip(), result["file"]

    quant_btn.click(on_quantize, [spec_yaml, quant_source, quant_steps, quant_board, host, port, token],
                    [quant_status, quant_table, quant_file], concurrency_limit=1, concurrency_id="quantize")
