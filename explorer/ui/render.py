"""What the Design tab shows: a design's numbers, table, charts and form, as ``{output name: value}``.

``render_design`` draws every view of a (new) valid design from one count
(``explorer.ui.worker.analyze_bounded``: in a worker process, refused past its time and memory
bounds with a ``SpecError``) and pushes it onto the undo history; ``render_error`` changes only
an error box and the status line, so the last valid design stays on screen. The pieces
(``metrics_html``, ``table_rows``, ``form_updates``, ``stage_updates``, ``design_file``) are
plain functions the tests call.

Output names (``FULL_KEYS`` plus the form slots ``slot{i}_number|choice|check``):
``spec_yaml`` (state: the current valid design), ``history`` (state), ``editor``, ``picker``,
``metrics``, ``table``, ``bars``, ``scatter``, ``diagram``, ``graph``, ``warnings``, ``form_title``, ``stage_name``,
``stage_repeat``, ``status``, ``edit_error``, ``yaml_error``, ``draft``, ``draft_note``,
``download``, ``undo_btn``, ``redo_btn``, ``upload``.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from blocks import get_block

from ..analysis import Analysis, Progress
from ..charts import architecture_diagram, block_bars, preset_points, preset_scatter
from ..edit import BlockRef, block_refs, get_entry, settings_text
from ..history import History
from ..spec import ArchitectureSpec, SpecError, dump_spec, expand_units
from .forms import FORM_SLOTS, NUMBER_KINDS, form_values, slot_keys
from .graph_view import graph_outputs
from .state import load_state, remember, selected_ref
from .worker import analyze_bounded

__all__ = [
    "DRAFT_NOTE",
    "FULL_KEYS",
    "TABLE_HEADERS",
    "Later",
    "Progress",
    "design_file",
    "errors_html",
    "form_updates",
    "gradio_progress",
    "metrics_html",
    "ok_html",
    "render_design",
    "render_error",
    "resolved",
    "stage_updates",
    "table_rows",
]

TABLE_HEADERS = ["unit", "place", "type", "settings", "output C×H×W", "params", "MACs (M)", "peak act. (KiB)",
                 "read fp32 (KiB)", "written fp32 (KiB)"]  # memory traffic per inference; int8: a quarter

FULL_KEYS = (
    "spec_yaml", "history", "editor", "picker", "metrics", "table", "bars", "scatter", "diagram",
    "form_title", "stage_name", "stage_repeat", "status", "edit_error", "yaml_error", "download",
    "undo_btn", "redo_btn",
)

DRAFT_NOTE = ("Your last YAML draft did not validate, so it was not applied; it is kept: "
              "**Restore draft** puts it back in the editor.")


def gradio_progress(progress: Any) -> Progress:
    """Adapt ``gr.Progress`` (``progress(fraction, desc=...)``) to a ``Progress`` reporter."""

    def report(fraction: float, description: str) -> None:
        progress(fraction, desc=description)

    return report


# ----------------------------------------------------------------------------- formatting


def _mega(n: float, unit: str = "M", scale: float = 1e6, digits: int = 3) -> str:
    return f"{n / scale:,.{digits}f} {unit}"


def _mib(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB"


def _delta(new: int, old: int | None, scale: float, unit: str, digits: int) -> str:
    if old is None or new == old:
        return ""
    sign = "+" if new > old else "−"
    pct = f" ({(new - old) / old * 100:+.1f} %)" if old else ""
    cls = "up" if new > old else "down"
    return f'<span class="delta {cls}">{sign}{abs(new - old) / scale:,.{digits}f} {unit}{pct}</span>'


def metrics_html(a: Analysis, previous: Analysis | None = None) -> str:
    """The numbers bar: params, MACs, peak activation memory, fp32 / int8 size, with changes."""
    prev = previous
    cards = [
        ("params", "Params", _mega(a.params), a.params, _delta(a.params, prev.params if prev else None, 1e6, "M", 3)),
        ("macs", "MACs (fvcore)", _mega(a.macs, "G", 1e9, 3), a.macs,
         _delta(a.macs, prev.macs if prev else None, 1e9, "G", 3)),
        ("peak", "Peak activations", _mib(a.peak_activation_bytes), a.peak_activation_bytes,
         _delta(a.peak_activation_bytes, prev.peak_activation_bytes if prev else None, 2**20, "MiB", 2)),
        ("fp32", "Size fp32", _mib(a.size_fp32_bytes), a.size_fp32_bytes,
         _delta(a.size_fp32_bytes, prev.size_fp32_bytes if prev else None, 2**20, "MiB", 2)),
        ("int8", "Size int8", _mib(a.size_int8_bytes), a.size_int8_bytes,
         _delta(a.size_int8_bytes, prev.size_int8_bytes if prev else None, 2**20, "MiB", 2)),
    ]
    parts = []
    for key, label, shown, exact, delta in cards:
        parts.append(
            f'<div class="metric" id="metric-{key}" data-value="{exact}">'
            f'<div class="label">{label}</div><div class="value">{shown}</div>{delta}</div>'
        )
    feat = a.blocks[-2].out_shape if len(a.blocks) > 1 else a.input_shape
    note = (f"{html.escape(a.name)} · input {'×'.join(map(str, a.input_shape[1:]))} · {len(a.blocks)} units · "
            f"features {'×'.join(map(str, feat[1:]))}")
    if a.uncounted_macs:
        note += f" · +{a.uncounted_macs / 1e9:.3f} G attention MACs fvcore does not count"
    return f'<div class="metrics">{"".join(parts)}</div><div class="metrics-note">{note}</div>'


def errors_html(messages: Sequence[str]) -> str:
    """The error box: every message of a refused edit, escaped."""
    if not messages:
        return ""
    items = "".join(f"<li>{html.escape(m)}</li>" for m in messages)
    return f'<div class="error-box"><b>Not applied:</b><ul>{items}</ul></div>'


def ok_html(text: str) -> str:
    """A status line saying an action worked."""
    return f'<span class="ok">✓</span> {html.escape(text)}'


def _change_text(a: Analysis, prev: Analysis | None) -> str:
    if prev is None:
        return f"params {a.params / 1e6:.3f} M, {a.macs / 1e9:.3f} GMACs"
    return (f"params {prev.params / 1e6:.3f} → {a.params / 1e6:.3f} M, "
            f"GMACs {prev.macs / 1e9:.3f} → {a.macs / 1e9:.3f}")


# ----------------------------------------------------------------------------- views


def table_rows(spec: ArchitectureSpec, a: Analysis) -> list[list[Any]]:
    """The per-unit table: one row per unit in execution order (``TABLE_HEADERS``)."""
    rows = []
    for unit, row in zip(expand_units(spec), a.blocks, strict=True):
        rows.append([
            row.name, row.place, row.type, settings_text(unit.config), "×".join(map(str, row.out_shape[1:])),
            row.params, round(row.macs / 1e6, 2), round(row.peak_bytes / 2**10, 1),
            round(row.bytes_read / 2**10, 1), round(row.bytes_written / 2**10, 1),
        ])
    return rows


def form_updates(spec: ArchitectureSpec, ref: BlockRef) -> dict[str, Any]:
    """The form's title and slot updates showing the parameters of the block at ``ref``."""
    try:
        block_type, fields, values = form_values(spec, ref)
    except SpecError:
        block_type, fields, values = "", [], []
    out: dict[str, Any] = {}
    if block_type == "parallel":
        out["form_title"] = _parallel_title(spec, ref)
    elif block_type:
        out["form_title"] = f"**{ref.place}: `{block_type}`** — {html.escape(get_block(block_type).summary)}"
    else:
        out["form_title"] = "Pick a block to edit its parameters."
    for i in range(FORM_SLOTS):
        number, choice, check = slot_keys(i)
        f = fields[i] if i < len(fields) else None
        v = values[i] if i < len(values) else None
        kind = f.kind if f else ""
        if f is not None and kind in NUMBER_KINDS:
            out[number] = gr.update(visible=True, label=f.name, info=f.info, value=v)
        else:
            out[number] = gr.update(visible=False, value=None)
        if f is not None and kind == "choice":
            out[choice] = gr.update(visible=True, label=f.name, info=f.info, choices=[str(c) for c in f.choices],
                                    value=str(v))
        else:
            out[choice] = gr.update(visible=False)
        if f is not None and kind == "bool":
            out[check] = gr.update(visible=True, label=f.name, info=f.description or None, value=bool(v))
        else:
            out[check] = gr.update(visible=False)
    return out


def _parallel_title(spec: ArchitectureSpec, ref: BlockRef) -> str:
    """A parallel group's form title: its columns, block by block (their parameters are edited as YAML)."""
    entry = get_entry(spec, ref)
    columns = getattr(entry, "branches", [])
    lines = [f"**{ref.place}: a parallel group of {len(columns)} columns.** Its merge is below; "
             "the blocks of its columns are edited in the YAML tab:"]
    for i, column in enumerate(columns, 1):
        blocks = " → ".join(f"`{b.type}` ({html.escape(settings_text(b))})" for b in column)
        lines.append(f"- column {i}: {blocks}")
    return "\n".join(lines)


def stage_updates(spec: ArchitectureSpec, ref: BlockRef) -> dict[str, Any]:
    """The stage name and repeat boxes for the stage of ``ref`` (read-only for the stem and head)."""
    if 1 <= ref.stage <= len(spec.stages):
        st = spec.stages[ref.stage - 1]
        return {
            "stage_name": gr.update(value=st.name, label=f"stage {ref.stage}: name", interactive=True),
            "stage_repeat": gr.update(value=st.repeat, label=f"stage {ref.stage}: repeat", interactive=True),
        }
    where = "the stem" if ref.stage == 0 else "the head"
    return {
        "stage_name": gr.update(value="", label=f"{where} is not a stage", interactive=False),
        "stage_repeat": gr.update(value=None, label="repeat", interactive=False),
    }


class Later:
    """A view drawn when it is sent, not when the edit is applied: ``later()`` draws it (once) and returns it.

    An edit's numbers are shown first and its charts and table in a chained redraw
    (``explorer.ui.app``); drawn later, the three charts and the table (about 40 ms of the
    server's one Python thread) no longer delay the numbers. ``resolved`` turns one into its value.
    """

    __slots__ = ("_lock", "_make", "_value")

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make: Callable[[], Any] | None = make
        self._value: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            if self._make is not None:
                self._value, self._make = self._make(), None
            return self._value


def resolved(value: Any) -> Any:
    """``value``, or what it draws if it is a ``Later``."""
    return value() if isinstance(value, Later) else value


def design_file(yaml_text: str, name: str) -> str:
    """Write the design to a YAML file for download (one file per distinct text); its path."""
    digest = hashlib.sha1(yaml_text.encode("utf-8")).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "design"
    folder = Path(tempfile.gettempdir()) / "attendnext-explorer-downloads" / digest
    path = folder / f"{safe}.yaml"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml_text, encoding="utf-8")
        os.replace(tmp, path)
    return str(path)


# ----------------------------------------------------------------------------- the whole page


def render_design(
    spec: ArchitectureSpec,
    history: History,
    selected: str | BlockRef | None,
    action: str,
    previous_yaml: str | None = None,
    draft: str | None = None,
    set_editor: bool = True,
    progress: Progress | None = None,
    text: str | None = None,
    later: bool = False,
) -> dict[str, Any]:
    """Everything the page shows for a (new) valid design, from one ``analyze``; pushed onto ``history``.

    ``previous_yaml`` (the design before the edit) gives the numbers bar its changes;
    ``selected`` is the block whose form is shown (kept valid by ``selected_ref``);
    ``draft`` (a kept YAML draft) shows the note that it can be restored; with
    ``set_editor=False`` the YAML editor keeps the text the user typed. ``text``: ``dump_spec(spec)``
    when the caller has it already (dumping a design takes about 10 ms). ``later=True``: the
    charts and the table are ``Later`` values, drawn when the redraw sends them (an edit's second phase).
    """
    text = dump_spec(spec) if text is None else text
    remember(text, spec)
    history = history.push(text, action)
    a = analyze_bounded(spec, progress)  # in a worker, bounded; the bar moves as the units are counted
    prev = None
    if previous_yaml and previous_yaml != text:
        try:
            prev = analyze_bounded(load_state(previous_yaml))
        except SpecError:
            prev = None
    ref = selected_ref(spec, selected)

    def view(make: Callable[[], Any]) -> Any:
        return Later(make) if later else make()

    names = [st.name for st in spec.stages]
    repeats = [st.repeat for st in spec.stages]
    out: dict[str, Any] = {
        "spec_yaml": text,
        "history": history,
        "picker": gr.update(choices=[(label, r.key) for label, r in block_refs(spec)], value=ref.key),
        "metrics": metrics_html(a, prev),
        "table": view(lambda: table_rows(spec, a)),
        "bars": view(lambda: block_bars(a, names)),
        "scatter": view(lambda: preset_scatter(preset_points(), a)),
        "diagram": view(lambda: architecture_diagram(a, names, repeats)),
        **graph_outputs(spec, a, ref.key),
        "status": ok_html(f"{action}: {_change_text(a, prev)}"),
        "edit_error": "",
        "download": design_file(text, spec.name),
        "undo_btn": gr.update(interactive=history.can_undo),
        "redo_btn": gr.update(interactive=history.can_redo),
        **form_updates(spec, ref),
        **stage_updates(spec, ref),
    }
    if set_editor:
        out["editor"] = text
        out["yaml_error"] = ""
        out["draft_note"] = DRAFT_NOTE if draft else ""
    return out


def render_error(messages: Sequence[str], box: str = "edit_error") -> dict[str, Any]:
    """A refused edit: only the error ``box`` (and the status line) change; the design stays."""
    return {
        box: errors_html(messages),
        "status": f'<span class="bad">✗</span> {html.escape(messages[0] if messages else "not applied")}'
                  + (f" (+{len(messages) - 1} more)" if len(messages) > 1 else ""),
    }
