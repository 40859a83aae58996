"""Terminal-safe text: user-provided names and messages never drive the terminal.

A design name such as ``"\\x1b[31mred"`` (or a board's reply, a run's error, a file name) would
otherwise recolour, move the cursor, rewrite the title or reorder the line (bidirectional
overrides) when printed. ``safe_text`` writes such characters as visible escapes (``\\x1b``,
``\\u202e``); ``EscapingStream`` applies it to everything a command prints, which is how the
``explorer`` command line uses it (``cli.main`` wraps ``sys.stdout`` and ``sys.stderr``).
"""

from __future__ import annotations

import unicodedata
from typing import Any, TextIO

__all__ = ["EscapingStream", "safe_text"]


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    # Cc: C0 controls, DEL and C1 controls (0x9b is a one-byte CSI); Cf: bidi overrides and other
    # invisible formatting (U+202E, U+2066..2069, zero-width characters); Zl/Zp: line/paragraph separators
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")


def safe_text(text: object, keep: str = "") -> str:
    """``str(text)`` with control and invisible formatting characters written as escapes.

    Characters in ``keep`` (say ``"\\n"`` for a multi-line message) pass unchanged; printable text,
    including non-ASCII letters, is untouched: ``safe_text("ré\\x1b[31m") == "ré\\\\x1b[31m"``.
    """
    s = str(text)
    if s.isprintable():  # the common case, no copy
        return s
    return "".join(_escape(ch) if ch not in keep and _unsafe(ch) else ch for ch in s)


class EscapingStream:
    """A text stream that writes ``safe_text`` of everything, keeping newlines and tabs.

    A carriage return is kept only as the first character of a write, which is how progress bars
    (tqdm) redraw their line; anywhere else it is escaped like any control character.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        lead = "\r" if text.startswith("\r") else ""
        self._stream.write(lead + safe_text(text[len(lead):], keep="\n\t"))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, close ...
        return getattr(self._stream, name)
