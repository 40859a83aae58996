"""The ``explorer`` command line (also ``python -m explorer``).

Each sub-command lives in its own ``explorer/commands/*.py`` module exposing
``register(subparsers)``; that function adds a parser whose ``func`` receives the parsed
arguments and returns an exit code. A user's mistake (``SpecError``, ``ValueError``,
``FileNotFoundError``) prints one line on stderr and exits with code 2: never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__

__all__ = ["main", "COMMAND_MODULES", "UsageError"]

#: sub-command modules under explorer/commands, in the order ``--help`` lists them
COMMAND_MODULES = [
    "presets", "summarize", "ui", "export", "latency", "agent", "calibrate", "search", "searches", "train", "proxies",
    "runs", "link", "quantize", "weights", "evaluate", "report",
]


class UsageError(Exception):
    """A mistake in the command's use; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, like every other user error
        raise UsageError(f"{self.prog}: {message}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only`` (a command's name), that command alone (its module alone is imported:
    ``explorer ui`` answers on its port before the other commands' imports, torch among them, are paid)."""
    parser = _Parser(prog="explorer", description="AttendNeXt Explorer: design, count, measure and train backbones.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in [only] if only in COMMAND_MODULES else COMMAND_MODULES:
        importlib.import_module(f"explorer.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; what it prints goes through ``EscapingStream`` (user text never drives the terminal)."""
    from .terminal import EscapingStream

    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = EscapingStream(out), EscapingStream(err)
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = out, err


def _main(argv: Sequence[str] | None) -> int:
    try:
        words = list(sys.argv[1:] if argv is None else argv)
        parser = build_parser(only=words[0] if words else None)
        args = parser.parse_args(words)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except (UsageError, ValueError, FileNotFoundError, PermissionError) as exc:  # SpecError is a ValueError
        message = str(exc).replace("\n", " ")
        print(f"error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
