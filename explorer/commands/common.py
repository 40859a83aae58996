"""Pieces every sub-command shares: the store option and how a stored time is printed."""

from __future__ import annotations

import argparse
from datetime import datetime

__all__ = ["DB_HELP", "add_db_option", "local_time"]

DB_HELP = "the store (default $EXPLORER_DB or runs/explorer.sqlite)"


def add_db_option(parser: argparse.ArgumentParser, help: str = DB_HELP) -> None:
    """``--db PATH``: the SQLite store a command reads or writes (``None``: ``Store``'s default)."""
    parser.add_argument("--db", default=None, metavar="PATH", help=help)


def local_time(t: float | None) -> str:
    """A stored UNIX time as ``YYYY-MM-DD HH:MM`` in local time; ``-`` when there is none."""
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else "-"
