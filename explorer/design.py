"""One way to read a design, and one way to retarget it.

``load_design`` is the single entry point for every form a design arrives in: a preset name,
a YAML/JSON file path, YAML/JSON text, a mapping or an ``ArchitectureSpec``. It parses
(``explorer.spec``: pure, no torch), validates every block against the registry, and checks
sizes on the meta device (``explorer.build``) before anything real is allocated.

``retarget`` gives the same design for another input (size, channels) or number of classes,
validated and size-checked again: the training copy of a 1000-class design, a design analysed
at 160², and so on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .presets import resolve_spec
from .spec import ArchitectureSpec, SpecError, load_spec

__all__ = ["DesignRef", "load_design", "retarget"]

#: everything ``load_design`` accepts
DesignRef = str | Path | dict[str, Any] | ArchitectureSpec


def load_design(ref: DesignRef) -> ArchitectureSpec:
    """A preset name, a file path, YAML/JSON text, a mapping or a spec -> validated, size-checked spec.

    Raises ``SpecError`` (every message names the place and the fix) for anything else.
    """
    if isinstance(ref, ArchitectureSpec):
        return load_spec(ref)
    return resolve_spec(ref)


def retarget(
    spec: ArchitectureSpec,
    *,
    input_size: int | tuple[int, int] | None = None,
    num_classes: int | None = None,
    channels: int | None = None,
) -> ArchitectureSpec:
    """The same design with another input size, number of classes or input channels; validated.

    Arguments left at ``None`` keep the design's own value. A design that does not fit the new
    input (a stride chain that runs out of pixels) raises ``SpecError`` naming the new size.
    """
    data = spec.to_dict()
    if input_size is not None:
        data["input"]["size"] = input_size if isinstance(input_size, int) else list(input_size)
    if channels is not None:
        data["input"]["channels"] = int(channels)
    if num_classes is not None:
        data["num_classes"] = int(num_classes)
    try:
        return load_spec(data)
    except SpecError as exc:
        if input_size is None:
            raise
        size = input_size if isinstance(input_size, int) else "×".join(map(str, input_size))
        raise SpecError(f"{spec.name} at input {size}: {exc}") from None
