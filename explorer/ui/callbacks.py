"""The Design tab's callbacks: plain functions from the page's inputs to the page's new values.

Every callback is named ``on_<action>`` (as in every tab) and is the name of its endpoint in the
Gradio API. It takes plain values (YAML text, a ``History``, a block key, form values) and
returns a ``dict`` from an output *name* (see ``explorer.ui.render``) to its new value; a name
that is absent is left as it is on the page (``explorer.ui.app`` maps names to components and
absent ones to ``gr.skip()``). They call only the pure functions of ``explorer`` (spec, edit,
mutate, analysis, charts, history), so the tests drive them without a browser.

The contract of every edit (``_edit``):

- success: the new design is validated, counted once (``analyze``, cached per unit) and every
  view is redrawn from that one ``Analysis``; it is pushed onto the undo history;
- failure (``SpecError``): only the error box beside the field that caused it changes; the last
  valid design stays in state and on screen, and whatever the user typed stays where it was;
- YAML typed into the editor that does not validate is never thrown away: it is kept as the
  ``draft`` (a state), so an edit made elsewhere, which rewrites the editor, does not lose it;
  "Restore draft" puts it back.

Every design shown also gets its ``link`` (the page URL's query, ``explorer.link``: a reload or a
copied link reopens it and the selected block), the ``preset`` it is (the dropdown follows the
design; empty when it is no preset), and is handed to the keeper of "My designs"
(``explorer.ui.designs``). An edit of a preset renames it (``attendnext-edit-3``, see
``derived_design``) so that it never claims the preset's description.

An upload is read only when Gradio itself received the file (it lies in Gradio's upload
folder); a path a client names through the API is refused without touching it.
"""

from __future__ import annotations

import html
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from ..analysis_cache import preset_analysis
from ..design import load_design, load_preset
from ..edit import (
    BlockRef,
    add_block,
    add_stage,
    empty_spec,
    get_entry,
    move_block,
    remove_block,
    remove_stage,
    replace_block_type,
    set_block_params,
    set_stage,
    unit_refs,
)
from ..history import History
from ..link import LinkError, OpenedLink, design_query
from ..mutate import MUTATIONS, apply_mutation, describe, random_mutation
from ..presets import list_presets
from ..spec import MAX_SPEC_BYTES, ArchitectureSpec, SpecError, dump_spec
from .designs import keep
from .forms import FORM_SLOTS, NUMBER_KINDS, PARALLEL_FORM, FormField, block_form, form_raw, parse_form, slot_keys
from .render import Progress, form_updates, ok_html, render_design, render_error, stage_updates
from .state import derived_design, design_from_text, ensure_history, load_state, preset_of, selected_ref

__all__ = [
    "UPLOAD_REFUSED",
    "initial_values",
    "link_of",
    "on_add_block",
    "on_add_stage",
    "on_apply_form",
    "on_apply_stage",
    "on_editor_change",
    "on_load_preset",
    "on_move_block",
    "on_open_link",
    "on_mutate",
    "on_new_empty",
    "on_random_mutate",
    "on_redo",
    "on_remove_block",
    "on_remove_stage",
    "on_replace_type",
    "on_restore_draft",
    "on_select_block",
    "on_select_row",
    "on_undo",
    "on_upload",
    "received_upload",
]

DEFAULT_PRESET = "attendnext"
UPLOAD_SUFFIXES = (".yaml", ".yml", ".json")
#: the one answer to a path this server did not receive as an upload (whether or not it exists)
UPLOAD_REFUSED = "that file was not uploaded through this page; press ⬆ Load YAML and pick it again"


@dataclass(frozen=True)
class Edited:
    """What an edit made: the new design, the block to select afterwards, the words for status and undo."""

    spec: ArchitectureSpec
    selected: BlockRef | str | None
    action: str


def link_of(spec_yaml: str, selected: str | None = None) -> str:
    """The page URL's query for a design and its selected block (``""`` when its link would be too long)."""
    try:
        return design_query(load_state(spec_yaml), selected)
    except (LinkError, SpecError):
        return ""


def _shown(out: dict[str, Any], origin: str) -> dict[str, Any]:
    """A rendered design, with its link and preset, handed to the keeper of "My designs"."""
    text = out.get("spec_yaml")
    if text:
        picker = out.get("picker")
        selected = picker.get("value") if isinstance(picker, dict) else None
        out["link"] = link_of(text, selected)
        out["preset"] = preset_of(text)
        out["form_error"] = ""
        keep(text, origin)
    return out


def _edit(
    spec_yaml: str, history: History | None, draft: str | None, change: Callable[[ArchitectureSpec], Edited],
    progress: Progress | None = None, origin: str = "edit",
) -> dict[str, Any]:
    """Load the state's design, try ``change`` on it: ``SpecError`` -> the error box only, else redraw all.

    An edit that leaves the design as it was only says so (and clears the error box). An edited
    preset gets its own name (``derived_design``) unless ``origin`` says the design was loaded whole.
    """
    h = ensure_history(history, spec_yaml)
    try:
        done = change(load_state(spec_yaml))
    except SpecError as exc:
        return render_error(exc.errors)
    spec = done.spec if origin != "edit" else derived_design(done.spec, len(h.past) + 1)
    text = dump_spec(spec)  # dumped once: the comparison here and the state below
    if text == spec_yaml:
        return {"edit_error": "", "status": ok_html(f"{done.action}: nothing changed")}
    try:
        out = render_design(spec, h, done.selected, done.action, spec_yaml, draft, progress=progress, text=text,
                            later=True)
    except SpecError as exc:  # its count was refused (past the analysis bounds of ``explorer.ui.worker``)
        return render_error(exc.errors)
    return _shown(out, origin)


# ----------------------------------------------------------------------------- start, load


def initial_values(preset: str | None = None) -> dict[str, Any]:
    """The page's first values: the AttendNeXt preset (or the first preset there is)."""
    names = list_presets()
    name = preset if preset in names else (DEFAULT_PRESET if DEFAULT_PRESET in names else (names[0] if names else ""))
    spec = preset_analysis(name)[0] if name else empty_spec()  # counted before: read back, no size probe
    action = f"preset {name}" if name else "empty design"
    out = _shown(render_design(spec, History.start(dump_spec(spec), action), None, action), "preset")
    out["preset"] = name
    return out


def on_open_link(
    opened: OpenedLink, spec_yaml: str, history: History | None, draft: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The page was opened with a query (``explorer.link.read_query``): show its design and block.

    No design asked for: only the link of the page's design (so the address bar carries it). A
    damaged, tampered or invalid link: the page keeps the default design and says why, beside the
    editor and in the status line.
    """
    if opened.spec is None:
        out: dict[str, Any] = {"link": link_of(spec_yaml, "1:1")}
        if opened.error:
            out.update(render_error([opened.error]))
        return out
    spec = opened.spec
    text = dump_spec(spec)
    if text == spec_yaml:  # the default design: only the selection may differ
        return {**on_select_block(opened.selected, spec_yaml), "picker": gr.update(value=selected_ref(
            spec, opened.selected).key)}
    try:  # the page starts at the link's design: one clean first step, nothing to undo (a fresh page's history)
        out = render_design(spec, History.start(text, f"link {spec.name}"), opened.selected,
                            f"Opened the link's {spec.name}", None, draft, progress=progress, later=True)
    except SpecError as exc:
        return render_error([f"the link's design could not be counted: {exc.errors[0]}"])
    return _shown(out, "link")


def on_load_preset(
    name: str, spec_yaml: str, history: History | None, draft: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Replace the design with preset ``name`` (undoable)."""
    try:
        spec = load_preset(name)
    except SpecError as exc:
        return render_error(exc.errors)
    if dump_spec(spec) == spec_yaml:  # picked again (or the event came twice): nothing to say or do
        return {}
    return _edit(spec_yaml, history, draft, lambda _spec: Edited(spec, None, f"Loaded preset {name}"), progress,
                 origin="preset")


def on_new_empty(spec_yaml: str, history: History | None, draft: str | None = None) -> dict[str, Any]:
    """Replace the design with an empty one (a stem conv and the head; undoable)."""
    return _edit(spec_yaml, history, draft, lambda _spec: Edited(empty_spec(), None, "Started an empty design"),
                 origin="empty")


def received_upload(path: str | os.PathLike[str], upload_folder: str | os.PathLike[str] | None = None) -> Path | None:
    """The regular file at ``path`` if it lies in Gradio's upload folder (``upload_folder``), else ``None``.

    Gradio saves every file a browser (or an API client) uploads under
    ``gradio.utils.get_upload_folder()`` (``$GRADIO_TEMP_DIR``, default ``<tmp>/gradio``) before an
    event runs; a path outside it was named by the client, not uploaded. Outside paths are refused
    from their text alone, before anything touches the file system; inside, links are resolved and
    checked again, so a link cannot lead out.
    """
    root = Path(upload_folder if upload_folder is not None else get_upload_folder())
    roots = {Path(os.path.abspath(root)), Path(os.path.realpath(root))}
    lexical = Path(os.path.abspath(path))
    if not any(lexical != r and lexical.is_relative_to(r) for r in roots):
        return None
    real = Path(os.path.realpath(lexical))
    if not any(real != r and real.is_relative_to(r) for r in roots) or not real.is_file():
        return None
    return real


def on_upload(
    path: str | None, spec_yaml: str, history: History | None, draft: str | None = None,
    progress: Progress | None = None, upload_folder: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Load an uploaded YAML/JSON spec: only a file Gradio received, size-checked, parsed with ``safe_load``."""
    if not path:
        return {}
    file = received_upload(path, upload_folder)
    if file is None:
        return {**render_error([UPLOAD_REFUSED]), "upload": None}
    name = Path(path).name
    if file.suffix.lower() not in UPLOAD_SUFFIXES:
        return {**render_error([f"{name}: upload a design as .yaml, .yml or .json"]), "upload": None}
    try:
        size = file.stat().st_size
        if size > MAX_SPEC_BYTES:
            return {**render_error([f"the uploaded file is {size // 1024} KiB; a spec is at most "
                                    f"{MAX_SPEC_BYTES // 1024} KiB (is it really a design YAML?)"]), "upload": None}
        with open(file, "rb") as fh:
            text = fh.read(MAX_SPEC_BYTES + 1).decode("utf-8", errors="replace")
    except OSError:
        return {**render_error(["the uploaded file could not be read; upload it again"]), "upload": None}
    try:
        spec = design_from_text(text)
    except SpecError as exc:
        return {**render_error([f"{name}: {m}" for m in exc.errors]), "upload": None}
    out = _edit(spec_yaml, history, draft, lambda _spec: Edited(spec, None, f"Loaded {name}"), progress,
                origin="upload")
    out["upload"] = None
    return out


# ----------------------------------------------------------------------------- YAML editor


def on_editor_change(text: str | None, spec_yaml: str, history: History | None, selected: str | None) -> dict[str, Any]:
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
        spec = design_from_text(text)
    except SpecError as exc:
        return {**render_error(exc.errors, "yaml_error"), "draft": text}
    dumped = dump_spec(spec)
    if dumped == spec_yaml:  # typed back to the current design: nothing to apply
        return {"yaml_error": "", "draft": "", "draft_note": ""}
    try:
        out = render_design(spec, ensure_history(history, spec_yaml), selected, "Applied the YAML", spec_yaml,
                            set_editor=False, text=dumped, later=True)
    except SpecError as exc:  # its count was refused: kept as the draft, like text that does not validate
        return {**render_error(exc.errors, "yaml_error"), "draft": text}
    out.update(yaml_error="", draft="", draft_note="")
    return _shown(out, "yaml")


def on_restore_draft(draft: str | None) -> dict[str, Any]:
    """Put the kept YAML draft back into the editor (its change event validates it again)."""
    if not draft:
        return {"draft_note": "There is no draft to restore."}
    return {"editor": draft, "draft_note": ""}


# ----------------------------------------------------------------------------- selection and forms


def on_select_block(key: str | None, spec_yaml: str) -> dict[str, Any]:
    """A block was picked: show its form and its stage's settings."""
    spec = load_state(spec_yaml)
    ref = selected_ref(spec, key)
    return {**form_updates(spec, ref), **stage_updates(spec, ref), "edit_error": "", "form_error": "",
            "link": link_of(spec_yaml, ref.key)}


def on_select_row(row: int, spec_yaml: str) -> dict[str, Any]:
    """A row of the per-unit table was clicked: pick the written block that unit comes from."""
    refs = unit_refs(load_state(spec_yaml))
    if not 0 <= row < len(refs):
        return {}
    key = refs[row].key
    return {"picker": gr.update(value=key), **on_select_block(key, spec_yaml)}


def on_apply_form(
    spec_yaml: str, history: History | None, selected: str | None, draft: str | None, *slot_values: Any
) -> dict[str, Any]:
    """Apply the block form (slot values in slot order: number, choice, switch per slot)."""

    fields: list[FormField] = []

    def change(spec: ArchitectureSpec) -> Edited:
        ref = BlockRef.parse(selected)
        entry = get_entry(spec, ref)
        if entry.type == "parallel":
            fields[:] = PARALLEL_FORM
            merge = parse_form(PARALLEL_FORM, form_raw(PARALLEL_FORM, slot_values))["merge"]
            data = spec.to_dict()
            data["stages"][ref.stage - 1]["blocks"][ref.block - 1]["merge"] = merge
            return Edited(load_design(data), ref, f"Edited {ref.place}")
        fields[:] = block_form(entry.type)
        params = parse_form(fields, form_raw(fields, slot_values))
        return Edited(set_block_params(spec, ref, params), ref, f"Edited {ref.place}")

    out = _edit(spec_yaml, history, draft, change)
    if "spec_yaml" not in out and out.get("edit_error"):
        return _beside_fields(out, fields)
    return {**out, "form_error": ""}


def _beside_fields(refused: dict[str, Any], fields: list[FormField]) -> dict[str, Any]:
    """A refused form: its messages beside the form (not the top of the tab), each also in its field's hint."""
    box = refused.pop("edit_error")
    messages = re.findall(r"<li>(.*?)</li>", box, flags=re.S)
    out = {**refused, "edit_error": "", "form_error": box}
    for i, f in enumerate(fields[:FORM_SLOTS]):
        mine = [m for m in messages if re.search(rf"(^|: ){re.escape(f.name)}\b", html.unescape(m))]
        if not mine:
            continue
        number, choice, check = slot_keys(i)
        key = number if f.kind in NUMBER_KINDS else choice if f.kind == "choice" else check
        out[key] = gr.update(info="⚠ " + "; ".join(html.unescape(m) for m in mine))
    return out


def on_apply_stage(
    name: str | None, repeat: Any, spec_yaml: str, history: History | None, selected: str | None,
    draft: str | None = None,
) -> dict[str, Any]:
    """Rename the selected block's stage and set its repeat."""

    def change(spec: ArchitectureSpec) -> Edited:
        ref = BlockRef.parse(selected)
        if not 1 <= ref.stage <= len(spec.stages):
            raise SpecError("select a block inside a stage to edit the stage (the stem and head have no repeat)")
        if repeat is None or (isinstance(repeat, str) and not repeat.strip()):
            raise SpecError(f"stage {ref.stage}: repeat is missing; enter a whole number 1 to 64")
        return Edited(set_stage(spec, ref.stage, name, repeat), ref, f"Edited stage {ref.stage}")

    return _edit(spec_yaml, history, draft, change)


# ----------------------------------------------------------------------------- structure


def _palette_type(block_type: str | None) -> str:
    if not block_type:
        raise SpecError("pick a block type in the palette first")
    return block_type


def on_add_block(
    block_type: str | None, spec_yaml: str, history: History | None, selected: str | None,
    draft: str | None = None,
) -> dict[str, Any]:
    """Insert a palette block after the selected one (in the stem or a stage), keeping the width."""

    def change(spec: ArchitectureSpec) -> Edited:
        kind = _palette_type(block_type)
        ref = BlockRef.parse(selected)
        if ref.is_head:
            if not spec.stages:
                raise SpecError("the design has no stage; press 'Add stage' to start one")
            ref = BlockRef(len(spec.stages), len(spec.stages[-1].blocks))
        new_ref = BlockRef(ref.stage, ref.block + 1)
        return Edited(add_block(spec, ref.stage, ref.block + 1, kind), new_ref, f"Added {kind} at {new_ref.place}")

    return _edit(spec_yaml, history, draft, change)


def on_remove_block(spec_yaml: str, history: History | None, selected: str | None,
                    draft: str | None = None) -> dict[str, Any]:
    """Remove the selected block."""

    def change(spec: ArchitectureSpec) -> Edited:
        ref = BlockRef.parse(selected)
        return Edited(remove_block(spec, ref), BlockRef(ref.stage, max(1, ref.block - 1)), f"Removed {ref.place}")

    return _edit(spec_yaml, history, draft, change)


def on_move_block(
    offset: int, spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None
) -> dict[str, Any]:
    """Move the selected block up (``-1``) or down (``+1``) within its stage."""

    def change(spec: ArchitectureSpec) -> Edited:
        ref = BlockRef.parse(selected)
        new, new_ref = move_block(spec, ref, offset)
        return Edited(new, new_ref, f"Moved {ref.place} to block {new_ref.block}")

    return _edit(spec_yaml, history, draft, change)


def on_add_stage(
    block_type: str | None, spec_yaml: str, history: History | None, selected: str | None,
    draft: str | None = None,
) -> dict[str, Any]:
    """Add a stage after the selected block's stage, holding one palette block that keeps the width."""

    def change(spec: ArchitectureSpec) -> Edited:
        ref = BlockRef.parse(selected) if selected else BlockRef(-1, 1)
        position = len(spec.stages) + 1 if ref.is_head else ref.stage + 1
        return Edited(add_stage(spec, position, block_type or "dwsep"), BlockRef(position, 1),
                      f"Added stage {position}")

    return _edit(spec_yaml, history, draft, change)


def on_remove_stage(spec_yaml: str, history: History | None, selected: str | None,
                    draft: str | None = None) -> dict[str, Any]:
    """Remove the selected block's stage."""

    def change(spec: ArchitectureSpec) -> Edited:
        ref = BlockRef.parse(selected)
        if not 1 <= ref.stage <= len(spec.stages):
            raise SpecError("select a block inside a stage to remove that stage (the stem and head stay)")
        new = remove_stage(spec, ref.stage)
        after = BlockRef(min(ref.stage, len(new.stages)), 1) if new.stages else BlockRef(-1, 1)
        return Edited(new, after, f"Removed stage {ref.stage}")

    return _edit(spec_yaml, history, draft, change)


def on_replace_type(
    block_type: str | None, spec_yaml: str, history: History | None, selected: str | None,
    draft: str | None = None,
) -> dict[str, Any]:
    """Turn the selected block into the palette's block type (shared settings carry over)."""

    def change(spec: ArchitectureSpec) -> Edited:
        kind = _palette_type(block_type)
        ref = BlockRef.parse(selected)
        return Edited(replace_block_type(spec, ref, kind), ref, f"Made {ref.place} a {kind}")

    return _edit(spec_yaml, history, draft, change)


# ----------------------------------------------------------------------------- mutations, undo


def on_mutate(
    name: str, spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None
) -> dict[str, Any]:
    """Apply mutation ``name`` at the selected block (stage mutations: at its stage)."""

    def change(spec: ArchitectureSpec) -> Edited:
        if name not in MUTATIONS:
            raise SpecError(f"unknown mutation {name!r}; use one of {', '.join(MUTATIONS)}")
        ref = BlockRef.parse(selected)
        if not 1 <= ref.stage <= len(spec.stages):
            where = "the stem" if ref.stage == 0 else "the head"
            raise SpecError(f"{MUTATIONS[name].label}: {where} has no mutations; select a block inside a stage")
        block = ref.block if MUTATIONS[name].scope == "block" or name in ("deeper", "shallower") else None
        return Edited(apply_mutation(spec, name, ref.stage, block), ref, describe(name, ref.stage, block))

    return _edit(spec_yaml, history, draft, change)


def on_random_mutate(
    spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None,
    seed: int | None = None, rng: random.Random | None = None,
) -> dict[str, Any]:
    """A random mutation that keeps the design valid, drawn from ``rng`` (the session's generator).

    Not seeded from the design: after Undo the next press draws another mutation. ``seed`` gives
    a fixed draw (tests); with neither, a generator seeded from the OS is used.
    """
    h = ensure_history(history, spec_yaml)
    generator = random.Random(seed) if seed is not None else (rng if rng is not None else random.Random())

    def change(spec: ArchitectureSpec) -> Edited:
        result = random_mutation(spec, generator)
        return Edited(result.spec, BlockRef(result.stage, result.block or 1), f"Random: {result.description}")

    return _edit(spec_yaml, h, draft, change)


def _step(
    history: History | None, spec_yaml: str, selected: str | None, draft: str | None, undo: bool
) -> dict[str, Any]:
    h = ensure_history(history, spec_yaml)
    if not (h.can_undo if undo else h.can_redo):
        return {"status": f"nothing to {'undo' if undo else 'redo'}"}
    label = h.undo_label if undo else h.redo_label
    moved = h.undo() if undo else h.redo()
    try:
        out = render_design(load_state(moved.text), moved, selected, f"{'Undid' if undo else 'Redid'}: {label}",
                            spec_yaml, draft, later=True)
    except SpecError as exc:  # its count was refused (past the analysis bounds)
        return render_error(exc.errors)
    out["history"] = moved  # render_design's push of the present text is a no-op; keep the moved history
    return _shown(out, "undo" if undo else "redo")


def on_undo(spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None) -> dict[str, Any]:
    """Go back one design."""
    return _step(history, spec_yaml, selected, draft, undo=True)


def on_redo(spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None) -> dict[str, Any]:
    """Re-apply one undone design."""
    return _step(history, spec_yaml, selected, draft, undo=False)
