"""One way to read a design, and one way to retarget it.

``load_design`` is the single entry point for every form a design arrives in: a preset name,
a YAML/JSON file path, YAML/JSON text, a mapping or an ``ArchitectureSpec``. It parses
(``explorer.spec``: pure, no torch), validates every block against the block registry
(``blocks.get_block``), and checks sizes on the meta device (``explorer.limits``, the builder
side) before anything real is allocated. ``load_preset`` is ``load_design`` of a preset, cached.

``retarget`` gives the same design for another input (size, channels) or number of classes,
validated and size-checked again: the training copy of a 1000-class design, a design analysed
at 160², and so on.

Text is told from a file path or a preset name by its shape: text spans several lines or is a
JSON object (``{...}``); anything else names a file (``.yaml``, ``.yml``, ``.json`` or an existing
path) or a preset.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from blocks import get_block

from .limits import check_size
from .presets import list_presets, preset_path
from .spec import MAX_SPEC_BYTES, ArchitectureSpec, SpecError, validate_spec
from .spec_yaml import parse_spec_text

__all__ = ["DesignRef", "load_design", "load_preset", "retarget"]

#: everything ``load_design`` accepts
DesignRef = str | Path | dict[str, Any] | ArchitectureSpec

_SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SpecError(f"no spec file at {str(path)!r}; give a .yaml or .json path or a preset name")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise SpecError(f"{path.name} is larger than {MAX_SPEC_BYTES // 1024} KiB; is it really a spec?")
    return parse_spec_text(path.read_text(encoding="utf-8", errors="replace"))


def _is_text(ref: str) -> bool:
    return "\n" in ref or ref.lstrip().startswith("{")


def _check(data: dict[str, Any] | ArchitectureSpec) -> ArchitectureSpec:
    """Validate against the block registry, then check sizes on the meta device."""
    spec = validate_spec(data, get_block)
    check_size(spec)
    return spec


@lru_cache(maxsize=32)
def _load_preset_cached(name: str) -> ArchitectureSpec:
    return _check(_read_file(preset_path(name)))


def load_preset(name: str) -> ArchitectureSpec:
    """A preset's validated, size-checked spec (cached; ``SpecError`` naming the presets if unknown)."""
    return _load_preset_cached(name)


def load_design(ref: DesignRef) -> ArchitectureSpec:
    """A preset name, a file path, YAML/JSON text, a mapping or a spec -> validated, size-checked spec.

    Raises ``SpecError`` (every message names the place and the fix) for anything else.
    """
    if isinstance(ref, (ArchitectureSpec, dict)):
        return _check(ref)
    if isinstance(ref, Path):
        return _check(_read_file(ref))
    if not isinstance(ref, str):
        raise SpecError(
            f"a design is a preset name, a file path, YAML/JSON text or a mapping, not a {type(ref).__name__}")
    if _is_text(ref):
        return _check(parse_spec_text(ref))
    path = Path(ref)
    if path.suffix.lower() in _SPEC_SUFFIXES or path.exists():
        return _check(_read_file(path))
    if ref in list_presets():
        return load_preset(ref)
    raise SpecError(f"{ref!r} is neither a preset ({', '.join(list_presets())}) nor a spec file")


def retarget(
    spec: ArchitectureSpec,
    *,
    input_size: int | tuple[int, int] | None = None,
    num_classes: int | None = None,
    channels: int | None = None,
) -> ArchitectureSpec:
    """The same design with another input size, number of classes or input channels; validated.

    Arguments left at ``None`` keep the design's own value. A design that does not fit the new
    input (a stride chain that runs out of pixels) raises ``SpecError`` naming the new size
    (``attendnext at 16×16: stage 5, ...``).
    """
    data = spec.to_dict()
    if input_size is not None:
        data["input"]["size"] = input_size if isinstance(input_size, int) else list(input_size)
    if channels is not None:
        data["input"]["channels"] = int(channels)
    if num_classes is not None:
        data["num_classes"] = int(num_classes)
    try:
        return _check(data)
    except SpecError as exc:
        if input_size is None:
            raise
        h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
        raise SpecError(f"{spec.name} at {h}×{w}: {exc}") from None
