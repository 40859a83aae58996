"""The app's "Download report" button: the current design as one self-contained HTML file.

``on_report(spec_yaml)`` counts the design (``analyze_bounded``: answered from memory when the
Design tab has counted it), reads what the UI's store (``ui_store``) holds about it and writes
``explorer.report.report_html`` to a per-design file under the temporary folder; it returns the
outputs ``{"report_file": update}``. A plain function: the tests call it without a browser.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from ..analysis import Progress
from ..report import records_from_store, report_html
from ..spec import SpecError
from ..store import StoreError
from .state import load_state
from .training_callbacks import ui_store
from .worker import analyze_bounded

__all__ = ["on_report", "report_path"]


def report_path(name: str, text: str) -> Path:
    """Where the report of the design ``text`` (named ``name``) is written: one folder per distinct page."""
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "design"
    return Path(tempfile.gettempdir()) / "attendnext-explorer-reports" / digest / f"{safe}-report.html"


def on_report(spec_yaml: str, progress: Progress | None = None) -> dict[str, Any]:
    """Write the report of the current design; ``{"report_file": gr.update(value=path, visible=True)}``.

    A store that cannot be read leaves its sections out (the note says why) rather than failing the report.
    """
    try:
        spec = load_state(spec_yaml)
        analysis = analyze_bounded(spec, progress)
    except SpecError as exc:
        raise gr.Error(f"no report: {exc}") from None
    try:
        records = records_from_store(ui_store(), spec)
    except (StoreError, OSError, ValueError) as exc:  # the page still has the design's own numbers
        gr.Warning(f"the report leaves the store out: {exc}")
        records = None
    text = report_html(spec, records, analysis=analysis)
    path = report_path(spec.name, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return {"report_file": gr.update(value=str(path), visible=True)}
