"""The explorer's callbacks: plain functions from the page's inputs to the page's new values.

Every callback takes plain values (YAML text, a ``History``, a block key, form values) and
returns a ``dict`` from an output *name* to its new value; a name that is absent is left as it
is on the page (``explorer.ui.app`` maps names to components and absent ones to ``gr.skip()``).
They call only the pure functions of ``explorer`` (spec, edit, mutate, analysis, charts,
history), so the tests drive them without a browser.

The contract of every edit:

- success: the new design is validated, counted once (``analyze``, cached per unit) and every
  view is redrawn from that one ``Analysis``; it is pushed onto the undo history;
- failure (``SpecError``): only the error box beside the field that caused it changes; the last
  valid design stays in state and on screen, and whatever the user typed stays where it was;
- YAML typed into the editor that does not validate is never thrown away: it is kept as the
  ``draft`` (a state), so an edit made elsewhere, which rewrites the editor, does not lose it;
  "Restore draft" puts it back.

Output names (``FULL_KEYS`` plus the form slots ``slot{i}_number|choice|check``):
``spec_yaml`` (state: the current valid design), ``history`` (state), ``editor``, ``picker``,
``metrics``, ``table``, ``bars``, ``scatter``, ``diagram``, ``form_title``, ``stage_name``,
``stage_repeat``, ``status``, ``edit_error``, ``yaml_error``, ``draft``, ``draft_note``,
``download``, ``undo_btn``, ``redo_btn``, ``upload``.
"""

from __future__ import annotations

import hashlib
import html
import os
import random
import re
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Sequence

import gradio as gr

from blocks import get_block, list_blocks

from ..analysis import Analysis, analyze, count_unit
from ..charts import architecture_diagram, block_bars, preset_points, preset_scatter
from ..edit import (
    BlockRef,
    FormField,
    add_block,
    add_stage,
    block_form,
    block_refs,
    empty_spec,
    form_values,
    get_entry,
    move_block,
    parse_form,
    remove_block,
    remove_stage,
    replace_block_type,
    set_block_params,
    set_stage,
    settings_text,
    unit_refs,
)
from ..history import History
from ..limits import check_size
from ..mutate import MUTATIONS, apply_mutation, describe, random_mutation
from ..presets import list_presets, load_preset
from ..spec import MAX_SPEC_BYTES, ArchitectureSpec, SpecError, dump_spec, expand_units, parse_spec_text, validate_spec

__all__ = [
    "FORM_SLOTS",
    "FULL_KEYS",
    "TABLE_HEADERS",
    "Progress",
    "add_block_cb",
    "add_stage_cb",
    "apply_form",
    "apply_stage",
    "design_file",
    "editor_changed",
    "initial_values",
    "load_preset_cb",
    "load_upload",
    "metrics_html",
    "move_block_cb",
    "mutate",
    "new_empty",
    "random_mutate",
    "redo",
    "remove_block_cb",
    "remove_stage_cb",
    "replace_type_cb",
    "restore_draft",
    "select_block",
    "select_from_table",
    "slot_keys",
    "undo",
]

#: a progress reporter: fraction done (0..1) and a description; ``gr.Progress`` fits
Progress = Callable[[float, str], None]

#: the most parameters any registered block has: the form has that many slots
FORM_SLOTS = max(len(block_form(entry.name)) for entry in list_blocks())

TABLE_HEADERS = ["unit", "place", "type", "settings", "output C×H×W", "params", "MACs (M)", "peak act. (KiB)"]

FULL_KEYS = (
    "spec_yaml", "history", "editor", "picker", "metrics", "table", "bars", "scatter", "diagram",
    "form_title", "stage_name", "stage_repeat", "status", "edit_error", "yaml_error", "download",
    "undo_btn", "redo_btn",
)

DEFAULT_PRESET = "attendnext"

DRAFT_NOTE = ("Your last YAML draft did not validate, so it was not applied; it is kept: "
              "**Restore draft** puts it back in the editor.")


def slot_keys(i: int) -> tuple[str, str, str]:
    """Output names of form slot ``i``: its number box, its choice box, its switch."""
    return f"slot{i}_number", f"slot{i}_choice", f"slot{i}_check"


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
        ("params", "Params", _mega(a.params), a.params, _delta(a.params, prev and prev.params, 1e6, "M", 3)),
        ("macs", "MACs (fvcore)", _mega(a.macs, "G", 1e9, 3), a.macs, _delta(a.macs, prev and prev.macs, 1e9, "G", 3)),
        ("peak", "Peak activations", _mib(a.peak_activation_bytes), a.peak_activation_bytes,
         _delta(a.peak_activation_bytes, prev and prev.peak_activation_bytes, 2**20, "MiB", 2)),
        ("fp32", "Size fp32", _mib(a.size_fp32_bytes), a.size_fp32_bytes,
         _delta(a.size_fp32_bytes, prev and prev.size_fp32_bytes, 2**20, "MiB", 2)),
        ("int8", "Size int8", _mib(a.size_int8_bytes), a.size_int8_bytes,
         _delta(a.size_int8_bytes, prev and prev.size_int8_bytes, 2**20, "MiB", 2)),
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


def _errors_html(messages: Sequence[str]) -> str:
    if not messages:
        return ""
    items = "".join(f"<li>{html.escape(m)}</li>" for m in messages)
    return f'<div class="error-box"><b>Not applied:</b><ul>{items}</ul></div>'


def _ok(text: str) -> str:
    return f'<span class="ok">✓</span> {html.escape(text)}'


def _change_text(a: Analysis, prev: Analysis | None) -> str:
    if prev is None:
        return f"params {a.params / 1e6:.3f} M, {a.macs / 1e9:.3f} GMACs"
    return (f"params {prev.params / 1e6:.3f} → {a.params / 1e6:.3f} M, "
            f"GMACs {prev.macs / 1e9:.3f} → {a.macs / 1e9:.3f}")


# ----------------------------------------------------------------------------- views


def _table(spec: ArchitectureSpec, a: Analysis) -> list[list[Any]]:
    rows = []
    for unit, row in zip(expand_units(spec), a.blocks):
        rows.append([
            row.name, row.place, row.type, settings_text(unit.config), "×".join(map(str, row.out_shape[1:])),
            row.params, round(row.macs / 1e6, 2), round(row.peak_bytes / 2**10, 1),
        ])
    return rows


def _form_updates(spec: ArchitectureSpec, ref: BlockRef) -> dict[str, Any]:
    """Slot updates showing the form of the block at ``ref``."""
    try:
        block_type, fields, values = form_values(spec, ref)
    except SpecError:
        block_type, fields, values = "", [], []
    out: dict[str, Any] = {}
    if block_type == "parallel":
        out["form_title"] = f"**{ref.place}: a parallel group.** Edit its columns in the YAML tab."
    elif block_type:
        out["form_title"] = f"**{ref.place}: `{block_type}`** — {html.escape(_summary(block_type))}"
    else:
        out["form_title"] = "Pick a block to edit its parameters."
    for i in range(FORM_SLOTS):
        number, choice, check = slot_keys(i)
        f = fields[i] if i < len(fields) else None
        v = values[i] if i < len(values) else None
        kind = f.kind if f else ""
        if kind in ("int", "float", "optional_int"):
            out[number] = gr.update(visible=True, label=f.name, info=f.info, value=v)
        else:
            out[number] = gr.update(visible=False, value=None)
        if kind == "choice":
            out[choice] = gr.update(visible=True, label=f.name, info=f.info, choices=[str(c) for c in f.choices],
                                    value=str(v))
        else:
            out[choice] = gr.update(visible=False)
        if kind == "bool":
            out[check] = gr.update(visible=True, label=f.name, info=f.description or None, value=bool(v))
        else:
            out[check] = gr.update(visible=False)
    return out


def _summary(block_type: str) -> str:
    return get_block(block_type).summary


def _stage_updates(spec: ArchitectureSpec, ref: BlockRef) -> dict[str, Any]:
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


def _valid_ref(spec: ArchitectureSpec, key: str | None) -> BlockRef:
    """``key`` if it names a block of ``spec``, else the first stage block (or the head)."""
    try:
        ref = BlockRef.parse(key)
        get_entry(spec, ref)
        return ref
    except SpecError:
        pass
    if spec.stages:
        return BlockRef(1, 1)
    return BlockRef(0, 1) if spec.stem else BlockRef(-1, 1)


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


def _analyze(spec: ArchitectureSpec, progress: Progress | None = None) -> Analysis:
    """``analyze``; with ``progress``, units are counted one by one first so the bar can move."""
    if progress is not None:
        units = expand_units(spec)
        shapes = check_size(spec)  # input shape of every unit, on the meta device (cached)
        step = max(1, len(units) // 10)
        for i, (unit, (_name, in_shape, _out, _p)) in enumerate(zip(units, shapes)):
            if i % step == 0:
                progress(i / len(units), f"counting {unit.place}")
            count_unit(unit.config.model_dump_json(), in_shape, spec.num_classes)
        progress(1.0, "done")
    return analyze(spec)


_SPECS: OrderedDict[str, ArchitectureSpec] = OrderedDict()
_SPECS_MAX = 256


def _remember(text: str, spec: ArchitectureSpec) -> None:
    _SPECS[text] = spec
    _SPECS.move_to_end(text)
    while len(_SPECS) > _SPECS_MAX:
        _SPECS.popitem(last=False)


def _load_state(spec_yaml: str) -> ArchitectureSpec:
    """The validated spec of a state's YAML (specs this module produced are remembered by text)."""
    spec = _SPECS.get(spec_yaml)
    if spec is None:
        spec = validate_spec(parse_spec_text(spec_yaml))
        _remember(spec_yaml, spec)
    return spec


def _show(
    spec: ArchitectureSpec,
    history: History,
    selected: str | BlockRef | None,
    action: str,
    previous_yaml: str | None = None,
    draft: str | None = None,
    set_editor: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Everything the page shows for a (new) valid design, from one ``analyze``."""
    text = dump_spec(spec)
    _remember(text, spec)
    history = history.push(text, action)
    a = _analyze(spec, progress)
    prev = None
    if previous_yaml and previous_yaml != text:
        try:
            prev = analyze(_load_state(previous_yaml))
        except SpecError:
            prev = None
    ref = _valid_ref(spec, selected.key if isinstance(selected, BlockRef) else selected)
    names = [st.name for st in spec.stages]
    repeats = [st.repeat for st in spec.stages]
    out: dict[str, Any] = {
        "spec_yaml": text,
        "history": history,
        "picker": gr.update(choices=[(label, r.key) for label, r in block_refs(spec)], value=ref.key),
        "metrics": metrics_html(a, prev),
        "table": _table(spec, a),
        "bars": block_bars(a, names),
        "scatter": preset_scatter(preset_points(), a),
        "diagram": architecture_diagram(a, names, repeats),
        "status": _ok(f"{action}: {_change_text(a, prev)}"),
        "edit_error": "",
        "download": design_file(text, spec.name),
        "undo_btn": gr.update(interactive=history.can_undo),
        "redo_btn": gr.update(interactive=history.can_redo),
        **_form_updates(spec, ref),
        **_stage_updates(spec, ref),
    }
    if set_editor:
        out["editor"] = text
        out["yaml_error"] = ""
        out["draft_note"] = DRAFT_NOTE if draft else ""
    return out


def _failed(messages: Sequence[str], box: str = "edit_error") -> dict[str, Any]:
    """Only the error box (and the status line) change; the design stays."""
    return {
        box: _errors_html(messages),
        "status": f'<span class="bad">✗</span> {html.escape(messages[0] if messages else "not applied")}'
                  + (f" (+{len(messages) - 1} more)" if len(messages) > 1 else ""),
    }


def _history(history: History | None, spec_yaml: str) -> History:
    return history if isinstance(history, History) else History.start(spec_yaml, "start")


# ----------------------------------------------------------------------------- start, load, save


def initial_values(preset: str | None = None) -> dict[str, Any]:
    """The page's first values: the AttendNeXt preset (or the first preset there is)."""
    names = list_presets()
    name = preset if preset in names else (DEFAULT_PRESET if DEFAULT_PRESET in names else (names[0] if names else ""))
    spec = load_preset(name) if name else empty_spec()
    text = dump_spec(spec)
    out = _show(spec, History.start(text, f"preset {name}" if name else "empty design"), None,
                f"preset {name}" if name else "empty design")
    out["preset"] = name
    return out


def load_preset_cb(
    name: str, spec_yaml: str, history: History | None, draft: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Replace the design with preset ``name`` (undoable)."""
    try:
        spec = load_preset(name)
    except SpecError as exc:
        return _failed(exc.errors)
    if dump_spec(spec) == spec_yaml:
        return {"status": _ok(f"preset {name} is already the design")}
    return _show(spec, _history(history, spec_yaml), None, f"Loaded preset {name}", spec_yaml, draft,
                 progress=progress)


def new_empty(spec_yaml: str, history: History | None, draft: str | None = None) -> dict[str, Any]:
    """Replace the design with an empty one (a stem conv and the head; undoable)."""
    return _show(empty_spec(), _history(history, spec_yaml), None, "Started an empty design", spec_yaml, draft)


def load_upload(
    path: str | None, spec_yaml: str, history: History | None, draft: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Load an uploaded YAML/JSON spec: size-checked before reading, parsed with ``safe_load`` only."""
    if not path:
        return {}
    try:
        size = os.path.getsize(path)
    except OSError:
        return {**_failed(["the uploaded file could not be read; upload it again"]), "upload": None}
    if size > MAX_SPEC_BYTES:
        return {**_failed([f"the uploaded file is {size // 1024} KiB; a spec is at most {MAX_SPEC_BYTES // 1024} KiB"
                           " (is it really a design YAML?)"]), "upload": None}
    with open(path, "rb") as fh:
        text = fh.read(MAX_SPEC_BYTES + 1).decode("utf-8", errors="replace")
    try:
        spec = validate_spec(parse_spec_text(text))
    except SpecError as exc:
        name = Path(path).name
        return {**_failed([f"{name}: {m}" for m in exc.errors]), "upload": None}
    out = _show(spec, _history(history, spec_yaml), None, f"Loaded {Path(path).name}", spec_yaml, draft,
                progress=progress)
    out["upload"] = None
    return out


# ----------------------------------------------------------------------------- YAML editor


def editor_changed(text: str | None, spec_yaml: str, history: History | None, selected: str | None) -> dict[str, Any]:
    """The YAML editor changed (typing, or another tab set it): validate, then update everything.

    The editor keeps the user's text (no reformatting under the cursor); the state takes the
    validated, defaults-filled design. Text that does not validate fills the error box beside
    the editor and is kept as the ``draft`` (so an edit made elsewhere, which rewrites the
    editor, never loses it); text that validates clears the draft.
    """
    text = text or ""
    if text.strip() == spec_yaml.strip():  # the app's own update echoed back (Code strips the text)
        return {"yaml_error": ""}
    try:
        spec = validate_spec(parse_spec_text(text))
    except SpecError as exc:
        return {**_failed(exc.errors, "yaml_error"), "draft": text}
    if dump_spec(spec) == spec_yaml:  # typed back to the current design: nothing to apply
        return {"yaml_error": "", "draft": "", "draft_note": ""}
    out = _show(spec, _history(history, spec_yaml), selected, "Applied the YAML", spec_yaml, set_editor=False)
    out.update(yaml_error="", draft="", draft_note="")
    return out


def restore_draft(draft: str | None) -> dict[str, Any]:
    """Put the kept YAML draft back into the editor (its change event validates it again)."""
    if not draft:
        return {"draft_note": "There is no draft to restore."}
    return {"editor": draft, "draft_note": ""}


# ----------------------------------------------------------------------------- selection and forms


def select_block(key: str | None, spec_yaml: str) -> dict[str, Any]:
    """A block was picked: show its form and its stage's settings."""
    spec = _load_state(spec_yaml)
    ref = _valid_ref(spec, key)
    return {**_form_updates(spec, ref), **_stage_updates(spec, ref), "edit_error": ""}


def select_from_table(row: int, spec_yaml: str) -> dict[str, Any]:
    """A row of the per-unit table was clicked: pick the written block that unit comes from."""
    spec = _load_state(spec_yaml)
    refs = unit_refs(spec)
    if not 0 <= row < len(refs):
        return {}
    ref = refs[row]
    return {"picker": gr.update(value=ref.key), **select_block(ref.key, spec_yaml)}


def _form_raw(fields: Sequence[FormField], slot_values: Sequence[Any]) -> list[Any]:
    """Pick each field's value from its slot's component of the right kind."""
    raw = []
    for i, f in enumerate(fields):
        number, choice, check = slot_values[3 * i: 3 * i + 3]
        raw.append(number if f.kind in ("int", "float", "optional_int") else choice if f.kind == "choice" else check)
    return raw


def apply_form(
    spec_yaml: str, history: History | None, selected: str | None, draft: str | None, *slot_values: Any
) -> dict[str, Any]:
    """Apply the block form (slot values in slot order: number, choice, switch per slot)."""
    spec = _load_state(spec_yaml)
    try:
        ref = BlockRef.parse(selected)
        entry = get_entry(spec, ref)
        if entry.type == "parallel":
            raise SpecError(f"{ref.place}: a parallel group; edit its columns in the YAML tab")
        fields = block_form(entry.type)
        params = parse_form(fields, _form_raw(fields, slot_values))
        new = set_block_params(spec, ref, params)
    except SpecError as exc:
        return _failed(exc.errors)
    if dump_spec(new) == spec_yaml:
        return {"edit_error": "", "status": _ok(f"{ref.place}: nothing changed")}
    return _show(new, _history(history, spec_yaml), ref, f"Edited {ref.place}", spec_yaml, draft)


def apply_stage(
    name: str | None, repeat: Any, spec_yaml: str, history: History | None, selected: str | None,
    draft: str | None = None,
) -> dict[str, Any]:
    """Rename the selected block's stage and set its repeat."""
    spec = _load_state(spec_yaml)
    try:
        ref = BlockRef.parse(selected)
        if not 1 <= ref.stage <= len(spec.stages):
            raise SpecError("select a block inside a stage to edit the stage (the stem and head have no repeat)")
        if repeat is None or (isinstance(repeat, str) and not repeat.strip()):
            raise SpecError(f"stage {ref.stage}: repeat is missing; enter a whole number 1 to 64")
        new = set_stage(spec, ref.stage, name, repeat)
    except SpecError as exc:
        return _failed(exc.errors)
    return _show(new, _history(history, spec_yaml), ref, f"Edited stage {ref.stage}", spec_yaml, draft)


# ----------------------------------------------------------------------------- structure


def add_block_cb(
    block_type: str | None, spec_yaml: str, history: History | None, selected: str | None,
    draft: str | None = None,
) -> dict[str, Any]:
    """Insert a palette block after the selected one (in the stem or a stage), keeping the width."""
    spec = _load_state(spec_yaml)
    try:
        if not block_type:
            raise SpecError("pick a block type in the palette first")
        ref = BlockRef.parse(selected)
        if ref.is_head:
            if not spec.stages:
                raise SpecError("the design has no stage; press 'Add stage' to start one")
            ref = BlockRef(len(spec.stages), len(spec.stages[-1].blocks))
        new = add_block(spec, ref.stage, ref.block + 1, block_type)
        new_ref = BlockRef(ref.stage, ref.block + 1)
    except SpecError as exc:
        return _failed(exc.errors)
    return _show(new, _history(history, spec_yaml), new_ref, f"Added {block_type} at {new_ref.place}", spec_yaml,
                 draft)


def remove_block_cb(spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None) -> dict[str, Any]:
    """Remove the selected block."""
    spec = _load_state(spec_yaml)
    try:
        ref = BlockRef.parse(selected)
        new = remove_block(spec, ref)
    except SpecError as exc:
        return _failed(exc.errors)
    after = BlockRef(ref.stage, max(1, ref.block - 1))
    return _show(new, _history(history, spec_yaml), after, f"Removed {ref.place}", spec_yaml, draft)


def move_block_cb(
    offset: int, spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None
) -> dict[str, Any]:
    """Move the selected block up (``-1``) or down (``+1``) within its stage."""
    spec = _load_state(spec_yaml)
    try:
        ref = BlockRef.parse(selected)
        new, new_ref = move_block(spec, ref, offset)
    except SpecError as exc:
        return _failed(exc.errors)
    return _show(new, _history(history, spec_yaml), new_ref, f"Moved {ref.place} to block {new_ref.block}",
                 spec_yaml, draft)


def add_stage_cb(
    block_type: str | None, spec_yaml: str, history: History | None, selected: str | None,
    draft: str | None = None,
) -> dict[str, Any]:
    """Add a stage after the selected block's stage, holding one palette block that keeps the width."""
    spec = _load_state(spec_yaml)
    try:
        ref = BlockRef.parse(selected) if selected else BlockRef(-1, 1)
        position = len(spec.stages) + 1 if ref.is_head else ref.stage + 1
        new = add_stage(spec, position, block_type or "dwsep")
    except SpecError as exc:
        return _failed(exc.errors)
    return _show(new, _history(history, spec_yaml), BlockRef(position, 1), f"Added stage {position}", spec_yaml,
                 draft)


def remove_stage_cb(spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None) -> dict[str, Any]:
    """Remove the selected block's stage."""
    spec = _load_state(spec_yaml)
    try:
        ref = BlockRef.parse(selected)
        if not 1 <= ref.stage <= len(spec.stages):
            raise SpecError("select a block inside a stage to remove that stage (the stem and head stay)")
        new = remove_stage(spec, ref.stage)
    except SpecError as exc:
        return _failed(exc.errors)
    after = BlockRef(min(ref.stage, len(new.stages)), 1) if new.stages else BlockRef(-1, 1)
    return _show(new, _history(history, spec_yaml), after, f"Removed stage {ref.stage}", spec_yaml, draft)


def replace_type_cb(
    block_type: str | None, spec_yaml: str, history: History | None, selected: str | None,
    draft: str | None = None,
) -> dict[str, Any]:
    """Turn the selected block into the palette's block type (shared settings carry over)."""
    spec = _load_state(spec_yaml)
    try:
        if not block_type:
            raise SpecError("pick a block type in the palette first")
        ref = BlockRef.parse(selected)
        new = replace_block_type(spec, ref, block_type)
    except SpecError as exc:
        return _failed(exc.errors)
    return _show(new, _history(history, spec_yaml), ref, f"Made {ref.place} a {block_type}", spec_yaml, draft)


# ----------------------------------------------------------------------------- mutations, undo


def mutate(
    name: str, spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None
) -> dict[str, Any]:
    """Apply mutation ``name`` at the selected block (stage mutations: at its stage)."""
    spec = _load_state(spec_yaml)
    try:
        if name not in MUTATIONS:
            raise SpecError(f"unknown mutation {name!r}; use one of {', '.join(MUTATIONS)}")
        ref = BlockRef.parse(selected)
        if not 1 <= ref.stage <= len(spec.stages):
            where = "the stem" if ref.stage == 0 else "the head"
            raise SpecError(f"{MUTATIONS[name].label}: {where} has no mutations; select a block inside a stage")
        block = ref.block if MUTATIONS[name].scope == "block" else None
        new = apply_mutation(spec, name, ref.stage, block)
    except SpecError as exc:
        return _failed(exc.errors)
    return _show(new, _history(history, spec_yaml), ref, describe(name, ref.stage, block), spec_yaml, draft)


def random_mutate(
    spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """A random mutation that keeps the design valid.

    Deterministic: seeded by the design and the history's length unless ``seed`` is given.
    """
    spec = _load_state(spec_yaml)
    h = _history(history, spec_yaml)
    if seed is None:
        seed = int(hashlib.sha1(f"{len(h.past)}:{spec_yaml}".encode()).hexdigest()[:12], 16)
    try:
        new, what = random_mutation(spec, random.Random(seed))
    except SpecError as exc:
        return _failed(exc.errors)
    m = re.search(r"stage (\d+)(?:, block (\d+))?", what)
    ref = BlockRef(int(m.group(1)), int(m.group(2) or 1)) if m else selected
    return _show(new, h, ref, f"Random: {what}", spec_yaml, draft)


def _step(history: History | None, spec_yaml: str, selected: str | None, draft: str | None, undo: bool) -> dict[str, Any]:
    h = _history(history, spec_yaml)
    if not (h.can_undo if undo else h.can_redo):
        return {"status": f"nothing to {'undo' if undo else 'redo'}"}
    label = h.undo_label if undo else h.redo_label
    moved = h.undo() if undo else h.redo()
    spec = _load_state(moved.text)
    out = _show(spec, moved, selected, f"{'Undid' if undo else 'Redid'}: {label}", spec_yaml, draft)
    out["history"] = moved  # _show's push of the present text is a no-op; keep the moved history
    return out


def undo(spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None) -> dict[str, Any]:
    """Go back one design."""
    return _step(history, spec_yaml, selected, draft, undo=True)


def redo(spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None) -> dict[str, Any]:
    """Re-apply one undone design."""
    return _step(history, spec_yaml, selected, draft, undo=False)
