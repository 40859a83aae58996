"""``explorer ui [--host 127.0.0.1] [--port 7860] [--board HOST:PORT ...]``: serve the Gradio explorer.

The port answers at once: a start-up page (``explorer.ui.startup_page``) says the explorer is
starting and reloads itself into it once Gradio serves (Gradio and PyTorch take seconds to import).

*Measure on board* contacts only 127.0.0.1:8765, the boards in ``$EXPLORER_BOARDS`` and those
named with ``--board`` (repeatable; ``HOST`` alone allows every port of that host).
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="serve the explorer in the browser (http://127.0.0.1:7860)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--board", action="append", default=[], metavar="HOST:PORT",
                   help="a board agent the UI may contact, besides 127.0.0.1:8765 and $EXPLORER_BOARDS (repeatable)")
    p.add_argument("--data-root", default=None, metavar="DIR",
                   help="a folder of datasets the Training tab may name (ImageFolder or CIFAR-10 folders under it); "
                        "without it only the built-in datasets can be trained on from the browser")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..latency.client import BOARDS_ENV, allowed_boards

    allowed_boards(extra=args.board)  # a malformed address: one line, exit 2, before the server starts
    if args.data_root is not None:
        root = Path(args.data_root).expanduser()
        if not root.is_dir():
            raise ValueError(f"--data-root {args.data_root!r} is not a folder; give the folder that holds "
                             "your datasets")
        os.environ["EXPLORER_DATA_ROOT"] = str(root.resolve())
    check_port(args.host, args.port)  # a taken or impossible port: one line, exit 2, before gradio is imported
    if args.board:  # the callbacks read the list from the environment (so do servers started from here)
        os.environ[BOARDS_ENV] = ",".join([os.environ.get(BOARDS_ENV, ""), *args.board]).strip(",")
    from ..ui.startup_page import StartupPage  # the standard library only: it answers while gradio loads

    page = StartupPage(args.host, args.port).start()
    print(f"* Starting on http://{args.host}:{args.port} (a start-up page answers until the explorer is ready)",
          flush=True)
    try:
        from ..ui.app import launch  # gradio is imported only for this command

        launch(host=args.host, port=args.port, before_serving=page.close)  # the port goes to Gradio
    finally:
        page.close()
    return 0


def check_port(host: str, port: int) -> None:
    """``ValueError`` (one line) unless ``host:port`` can be served: a port number 1 to 65535, free now."""
    if not 1 <= port <= 65535:
        raise ValueError(f"--port {port} is not a port; use 1 to 65535 (default 7860)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ValueError(f"--host {host!r} is not an address of this machine; use 127.0.0.1 or 0.0.0.0") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds it
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ValueError(f"port {port} on {host} is taken (another explorer?); stop that one or "
                                 f"pick another with --port") from None
            raise ValueError(f"cannot serve on {host}:{port} ({exc.strerror}); pick another --port or "
                             "--host") from None
