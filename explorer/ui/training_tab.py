"""The training tab: a short training run of the current design with live plotly curves.

Only layout and wiring; the callbacks are ``explorer.ui.training_callbacks``. ``build_training_tab``
is called by ``explorer.ui.app`` inside an open ``gr.Tab``; ``spec_yaml`` is the ``gr.State`` that
holds the current valid design as YAML text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from . import training_callbacks as tc
from .state import session_key

__all__ = ["build_training_tab"]

HELP = """\
Train the current design for a few minutes on the CPU (CUDA when present): AdamW, warm-up then
cosine learning rate, label smoothing, random crops (and flips where the labels allow). The design
is built for the dataset's input size and classes. **Cancel** stops it within a step; the run keeps
what it learned (evaluated and saved). Every run, its curve and weights go to the store
(`$EXPLORER_DB`, default `runs/explorer.sqlite`); see the History tab.
"""


def build_training_tab(spec_yaml: gr.State) -> None:
    """Lay out the training panel inside the open tab and wire it to ``training_callbacks``."""
    gr.Markdown(HELP)
    # no minimum / maximum on the boxes: an out-of-range number gets the callback's message, not Gradio's
    with gr.Row():
        dataset = gr.Dropdown(tc.DATASETS, value="digits", label="dataset", elem_id="train-dataset")
        steps = gr.Number(100, label="steps", precision=0, elem_id="train-steps",
                          info=f"1 to {tc.MAX_UI_STEPS:,}")
        size = gr.Number(32, label="input size", precision=0, elem_id="train-input", info="16 to 256 pixels")
        seed = gr.Number(0, label="seed", precision=0, elem_id="train-seed", info="0 or more")
    root = tc.data_root()
    folder = gr.Textbox(
        "", label="or a dataset folder on the server (ImageFolder: class/image files; or CIFAR-10 python batches)",
        placeholder="a folder under the data root, e.g. cifar10" if root else "no data root: start the server with "
                    "explorer ui --data-root DIR to train on a folder",
        info=(f"relative to the data root {root}; nothing outside it can be read" if root else
              "only folders under the server's data root (explorer ui --data-root DIR) can be named"),
        interactive=root is not None, elem_id="train-folder", max_length=1024)
    with gr.Row():
        start_btn = gr.Button("Start", variant="primary", elem_id="train-start")
        cancel_btn = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
    status = gr.Markdown("", elem_id="train-status")
    with gr.Row():
        loss_plot = gr.Plot(label="training loss", elem_id="train-loss")
        acc_plot = gr.Plot(label="validation accuracy", elem_id="train-acc")

    # each handler bears its callback's name, which is its endpoint in the Gradio API
    def on_start_training(spec: str, ds: str, n: Any, s: Any, sd: Any, path: str,
                          request: gr.Request) -> Iterator[tuple[Any, Any, Any]]:
        yield from tc.on_start_training(spec, ds, n, s, sd, session=session_key(request), folder=path)

    def on_cancel_training(request: gr.Request) -> str:
        return tc.on_cancel_training(session_key(request))

    start_btn.click(on_start_training, [spec_yaml, dataset, steps, size, seed, folder], [status, loss_plot, acc_plot],
                    concurrency_limit=2, concurrency_id="training")
    cancel_btn.click(on_cancel_training, None, status, concurrency_limit=None, queue=False)
