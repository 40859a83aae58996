"""What a browser session holds, and how the callbacks read it back.

A session's design lives in a ``gr.State`` as YAML text (``spec_yaml``: always a design this
package validated and dumped) beside its undo ``History``. ``design_from_text`` is the UI's one
way to turn text into a validated design (the state, the YAML editor, an upload, the other
tabs); ``load_state`` is the same for a state's text, with the specs of recent texts remembered
so that an edit does not validate the design it starts from again. ``selected_ref`` keeps a
block selection valid after an edit changed the design; ``session_key`` names a browser session
(for the runs a session may start and stop: training, search). ``session_rng`` is a session's own
random generator (seeded from the OS, not from the design: "Random valid mutation" after Undo
draws again); ``preset_of`` names the preset a design is (or ``None``); ``derived_design`` gives
an edited preset its own name and description, so it never claims the preset's figures.
"""

from __future__ import annotations

import random
import re
import threading
from collections import OrderedDict
from typing import Any

from ..analysis_cache import preset_analysis
from ..design import load_design, load_preset
from ..edit import BlockRef, get_entry
from ..history import History
from ..presets import list_presets
from ..spec import ArchitectureSpec, SpecError, dump_spec
from ..spec_yaml import parse_spec_text

__all__ = ["derived_design", "design_from_text", "ensure_history", "load_state", "preset_of", "remember",
           "selected_ref", "session_key", "session_rng"]

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


#: sessions whose random generator is kept (the least recently used beyond this are dropped)
RNG_SESSIONS_MAX = 512
_RNGS: OrderedDict[str, random.Random] = OrderedDict()
_RNGS_LOCK = threading.Lock()


def session_rng(key: str) -> random.Random:
    """The random generator of browser session ``key``: seeded once from the OS, then drawn on."""
    with _RNGS_LOCK:
        rng = _RNGS.get(key)
        if rng is None:
            rng = _RNGS[key] = random.Random()  # seeded from os.urandom
            while len(_RNGS) > RNG_SESSIONS_MAX:
                _RNGS.popitem(last=False)
        _RNGS.move_to_end(key)
        return rng


_PRESET_TEXTS: dict[str, str] = {}
_PRESET_LOCK = threading.Lock()


def _preset_texts() -> dict[str, str]:
    """{dumped YAML: preset name} of every preset (built once)."""
    with _PRESET_LOCK:
        if not _PRESET_TEXTS:
            for name in list_presets():
                try:
                    _PRESET_TEXTS[dump_spec(preset_analysis(name)[0])] = name
                except SpecError:  # a broken preset file is reported where it is loaded, not here
                    continue
        return _PRESET_TEXTS


def preset_of(spec_yaml: str | None) -> str | None:
    """The preset whose design ``spec_yaml`` (a state's dumped YAML) is, else ``None``."""
    return _preset_texts().get(spec_yaml or "")


#: the suffix an edited preset's name gets: ``attendnext-edit-3``
_EDIT_SUFFIX = re.compile(r"-edit-\d+$")


def derived_design(spec: ArchitectureSpec, step: int) -> ArchitectureSpec:
    """``spec`` named for what it is, after an edit of a design that came from a preset.

    A design bearing a preset's name that is no longer that preset becomes ``<preset>-edit-<step>``
    with a description saying so (the preset's one quotes the preset's figures); a design that is
    the preset again (an edit undone by hand) gets the preset's name and description back. Any
    other design (one the user named) is returned as it is.
    """
    base = _EDIT_SUFFIX.sub("", spec.name)
    if base not in list_presets():
        return spec
    try:
        preset = load_preset(base)
    except SpecError:
        return spec
    as_preset = spec.model_copy(update={"name": preset.name, "description": preset.description})
    if as_preset == preset:
        return as_preset
    if spec.name != base:  # already named as an edit of the preset
        return spec
    name = f"{base}-edit-{max(1, int(step))}"
    description = (f"Derived from the {base} preset by editing it in the explorer; the preset's description "
                   "and figures no longer apply (see this design's own numbers).")
    return spec.model_copy(update={"name": name, "description": description})
