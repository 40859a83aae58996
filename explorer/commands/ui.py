"""``explorer ui [--host 127.0.0.1] [--port 7860] [--board HOST:PORT ...]``: serve the Gradio explorer.

*Measure on board* contacts only 127.0.0.1:8765, the boards in ``$EXPLORER_BOARDS`` and those
named with ``--board`` (repeatable; ``HOST`` alone allows every port of that host).
"""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="serve the explorer in the browser (http://127.0.0.1:7860)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--board", action="append", default=[], metavar="HOST:PORT",
                   help="a board agent the UI may contact, besides 127.0.0.1:8765 and $EXPLORER_BOARDS (repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..latency.client import BOARDS_ENV, allowed_boards

    allowed_boards(extra=args.board)  # a malformed address: one line, exit 2, before the server starts
    if args.board:  # the callbacks read the list from the environment (so do servers started from here)
        os.environ[BOARDS_ENV] = ",".join([os.environ.get(BOARDS_ENV, ""), *args.board]).strip(",")
    from ..ui.app import launch  # gradio is imported only for this command

    launch(host=args.host, port=args.port)
    return 0
