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

An upload is read only when Gradio itself received the file (it lies in Gradio's upload
folder); a path a client names through the API is refused without touching it.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from ..design import load_preset
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
from ..mutate import MUTATIONS, apply_mutation, describe, random_mutation
from ..presets import list_presets
from ..spec import MAX_SPEC_BYTES, ArchitectureSpec, SpecError, dump_spec
from .forms import block_form, form_raw, parse_form
from .render import Progress, form_updates, ok_html, render_design, render_error, stage_updates
from .state import design_from_text, ensure_history, load_state, selected_ref

__all__ = [
    "UPLOAD_REFUSED",
    "initial_values",
    "on_add_block",
    "on_add_stage",
    "on_apply_form",
    "on_apply_stage",
    "on_editor_change",
    "on_load_preset",
    "on_move_block",
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


def _edit(
    spec_yaml: str, history: History | None, draft: str | None, change: Callable[[ArchitectureSpec], Edited],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Load the state's design, try ``change`` on it: ``SpecError`` -> the error box only, else redraw all.

    An edit that leaves the design as it was only says so (and clears the error box).
    """
    try:
        done = change(load_state(spec_yaml))
    except SpecError as exc:
        return render_error(exc.errors)
    if dump_spec(done.spec) == spec_yaml:
        return {"edit_error": "", "status": ok_html(f"{done.action}: nothing changed")}
    try:
        return render_design(done.spec, ensure_history(history, spec_yaml), done.selected, done.action, spec_yaml,
                             draft, progress=progress)
    except SpecError as exc:  # its count was refused (past the analysis bounds of ``explorer.ui.worker``)
        return render_error(exc.errors)


# ----------------------------------------------------------------------------- start, load


def initial_values(preset: str | None = None) -> dict[str, Any]:
    """The page's first values: the AttendNeXt preset (or the first preset there is)."""
    names = list_presets()
    name = preset if preset in names else (DEFAULT_PRESET if DEFAULT_PRESET in names else (names[0] if names else ""))
    spec = load_preset(name) if name else empty_spec()
    action = f"preset {name}" if name else "empty design"
    out = render_design(spec, History.start(dump_spec(spec), action), None, action)
    out["preset"] = name
    return out


def on_load_preset(
    name: str, spec_yaml: str, history: History | None, draft: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Replace the design with preset ``name`` (undoable)."""
    try:
        spec = load_preset(name)
    except SpecError as exc:
        return render_error(exc.errors)
    if dump_spec(spec) == spec_yaml:
        return {"status": ok_html(f"preset {name} is already the design")}
    return _edit(spec_yaml, history, draft, lambda _spec: Edited(spec, None, f"Loaded preset {name}"), progress)


def on_new_empty(spec_yaml: str, history: History | None, draft: str | None = None) -> dict[str, Any]:
    """Replace the design with an empty one (a stem conv and the head; undoable)."""
    return _edit(spec_yaml, history, draft, lambda _spec: Edited(empty_spec(), None, "Started an empty design"))


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
    out = _edit(spec_yaml, history, draft, lambda _spec: Edited(spec, None, f"Loaded {name}"), progress)
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
    if dump_spec(spec) == spec_yaml:  # typed back to the current design: nothing to apply
        return {"yaml_error": "", "draft": "", "draft_note": ""}
    try:
        out = render_design(spec, ensure_history(history, spec_yaml), selected, "Applied the YAML", spec_yaml,
                            set_editor=False)
    except SpecError as exc:  # its count was refused: kept as the draft, like text that does not validate
        return {**render_error(exc.errors, "yaml_error"), "draft": text}
    out.update(yaml_error="", draft="", draft_note="")
    return out


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
    return {**form_updates(spec, ref), **stage_updates(spec, ref), "edit_error": ""}


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

    def change(spec: ArchitectureSpec) -> Edited:
        ref = BlockRef.parse(selected)
        entry = get_entry(spec, ref)
        if entry.type == "parallel":
            raise SpecError(f"{ref.place}: a parallel group; edit its columns in the YAML tab")
        fields = block_form(entry.type)
        params = parse_form(fields, form_raw(fields, slot_values))
        return Edited(set_block_params(spec, ref, params), ref, f"Edited {ref.place}")

    return _edit(spec_yaml, history, draft, change)


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
    seed: int | None = None,
) -> dict[str, Any]:
    """A random mutation that keeps the design valid.

    Deterministic: seeded by the design and the history's length unless ``seed`` is given.
    """
    h = ensure_history(history, spec_yaml)
    if seed is None:
        seed = int(hashlib.sha1(f"{len(h.past)}:{spec_yaml}".encode()).hexdigest()[:12], 16)

    def change(spec: ArchitectureSpec) -> Edited:
        result = random_mutation(spec, random.Random(seed))
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
                            spec_yaml, draft)
    except SpecError as exc:  # its count was refused (past the analysis bounds)
        return render_error(exc.errors)
    out["history"] = moved  # render_design's push of the present text is a no-op; keep the moved history
    return out


def on_undo(spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None) -> dict[str, Any]:
    """Go back one design."""
    return _step(history, spec_yaml, selected, draft, undo=True)


def on_redo(spec_yaml: str, history: History | None, selected: str | None, draft: str | None = None) -> dict[str, Any]:
    """Re-apply one undone design."""
    return _step(history, spec_yaml, selected, draft, undo=False)
