"""Write one benchmark's table into ``benchmarks/RESULTS.md`` without touching the others.

Each benchmark owns a section delimited by HTML comments; running it replaces that section
(or appends it), so the file always holds the latest run of every benchmark.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# Benchmark results\n\n"
    "Every section is written by the script it names (`python benchmarks/<script>.py`); numbers\n"
    "come from the last run of that script on the machine stated in the section.\n"
)


def machine() -> str:
    """A one-line description of where the numbers were measured."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


def write_section(key: str, title: str, body: str) -> Path:
    """Replace (or add) the section ``key`` of RESULTS.md with ``title`` and ``body``."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"<!-- begin {key} -->\n## {title}\n\n_Measured {stamp} on {machine()}._\n\n"
        f"{body.rstrip()}\n<!-- end {key} -->"
    )
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(rf"<!-- begin {re.escape(key)} -->.*?<!-- end {re.escape(key)} -->", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    RESULTS.write_text(text.rstrip() + "\n")
    return RESULTS


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
