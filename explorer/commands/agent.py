"""``explorer agent --host 127.0.0.1 --port 8765 --token TOKEN``: serve latency measurements on this board.

The same service as ``python3 agent.py`` (``explorer/latency/agent.py``), with its limits:
``--max-mb``, ``--max-memory-mb``, ``--read-timeout``, ``--header-timeout``, ``--measure-timeout``,
``--max-connections``.
"""

from __future__ import annotations

import argparse

from ..latency import agent


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help="serve ONNX latency measurements over HTTP (runs on the board)")
    agent.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return agent.serve(args)
