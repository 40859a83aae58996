"""What a browser session holds, and how the callbacks read it back.

A session's design lives in a ``gr.State`` as YAML text (``spec_yaml``: always a design this
package validated and dumped) beside its undo ``History``. ``design_from_text`` is the UI's one
way to turn text into a validated design (the state, the YAML editor, an upload, the other
tabs); ``load_state`` is the same for a state's text, with the specs of recent texts remembered
so that an edit does not validate the design it starts from again. ``selected_ref`` keeps a
block selection valid after an edit changed the design; ``session_key`` names a browser session
(for the runs a session may start and stop: training, search).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from ..design import load_design
from ..edit import BlockRef, get_entry
from ..history import History
from ..spec import ArchitectureSpec, SpecError
from ..spec_yaml import parse_spec_text

__all__ = ["design_from_text", "ensure_history", "load_state", "remember", "selected_ref", "session_key"]

#: how many (text, spec) pairs are remembered across all sessions
REMEMBERED_MAX = 256

_SPECS: OrderedDict[str, ArchitectureSpec] = OrderedDict()
_SPECS_LOCK = threading.Lock()


def design_from_text(text: str | None) -> ArchitectureSpec:
    """YAML/JSON text -> a validated, size-checked design; ``SpecError`` naming the place otherwise.

    Text only: the text is parsed here and ``load_design`` gets the mapping, never a string it
    could take for a path or a preset name, so nothing a browser sends makes the server open a file.
    """
    if not text or not text.strip():
        raise SpecError("no design yet: pick a preset or write one in the Design tab")
    return load_design(parse_spec_text(text))


def remember(text: str, spec: ArchitectureSpec) -> None:
    """Remember that ``text`` is the YAML of the valid ``spec`` (the most recent ``REMEMBERED_MAX``)."""
    with _SPECS_LOCK:
        _SPECS[text] = spec
        _SPECS.move_to_end(text)
        while len(_SPECS) > REMEMBERED_MAX:
            _SPECS.popitem(last=False)


def load_state(spec_yaml: str) -> ArchitectureSpec:
    """The validated design of a state's YAML (remembered by text; validated on a miss)."""
    with _SPECS_LOCK:
        spec = _SPECS.get(spec_yaml)
    if spec is None:
        spec = design_from_text(spec_yaml)
        remember(spec_yaml, spec)
    return spec


def ensure_history(history: History | None, spec_yaml: str) -> History:
    """The session's history, or a new one starting at ``spec_yaml`` (a session without one yet)."""
    return history if isinstance(history, History) else History.start(spec_yaml, "start")


def selected_ref(spec: ArchitectureSpec, selected: str | BlockRef | None) -> BlockRef:
    """``selected`` if it names a block of ``spec``, else the first stage block (or the stem, or the head)."""
    try:
        ref = selected if isinstance(selected, BlockRef) else BlockRef.parse(selected)
        get_entry(spec, ref)
        return ref
    except SpecError:
        pass
    if spec.stages:
        return BlockRef(1, 1)
    return BlockRef(0, 1) if spec.stem else BlockRef(-1, 1)


def session_key(request: Any) -> str:
    """The browser session of a ``gr.Request`` (its session hash); ``"local"`` without one (a direct call)."""
    return getattr(request, "session_hash", None) or "local"
