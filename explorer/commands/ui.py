"""``explorer ui [--host 127.0.0.1] [--port 7860]``: serve the Gradio explorer."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="serve the explorer in the browser (http://127.0.0.1:7860)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..ui.app import launch  # gradio is imported only for this command

    launch(host=args.host, port=args.port)
    return 0
