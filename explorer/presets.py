"""Presets: AttendNeXt and its peers as YAML data in ``assets/presets``, all built from our blocks.

The folder is found beside the package in a source checkout and inside the installed
distribution otherwise (``pyproject.toml`` ships ``assets/`` as package data).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from .spec import ArchitectureSpec, SpecError, load_spec

__all__ = ["PRESET_ORDER", "assets_dir", "list_presets", "load_preset", "preset_path", "resolve_spec"]

#: the order in which presets are shown: ours first, then the peers of the paper's comparison
PRESET_ORDER = ("attendnext", "mobilenetv3_large", "mobilenetv3_small", "fbnet_c", "mobileone_s1", "mobilevit_xs")


def assets_dir() -> Path:
    """The ``assets`` folder (source checkout or installed copy)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "assets", here / "assets"):
        if (candidate / "presets").is_dir():
            return candidate
    raise FileNotFoundError("the assets/presets folder is missing from this installation")


def list_presets() -> list[str]:
    """Names of all presets, in display order."""
    found = {p.stem for p in (assets_dir() / "presets").glob("*.yaml")}
    return [n for n in PRESET_ORDER if n in found] + sorted(found - set(PRESET_ORDER))


def preset_path(name: str) -> Path:
    path = assets_dir() / "presets" / f"{name}.yaml"
    if not path.is_file():
        raise SpecError(f"no preset named {name!r}; presets: {', '.join(list_presets())}")
    return path


@lru_cache(maxsize=32)
def _load_preset_cached(name: str) -> ArchitectureSpec:
    return load_spec(preset_path(name))


def load_preset(name: str) -> ArchitectureSpec:
    """A preset's validated spec."""
    return _load_preset_cached(name)


def resolve_spec(ref: str | Path | dict[str, Any] | ArchitectureSpec) -> ArchitectureSpec:
    """A preset name, a YAML/JSON file path, YAML/JSON text, a mapping or a spec -> validated spec.

    The CLI's SPEC argument and the Python entry points (``train``, ``compute_proxies``) read
    designs through this; a spec object is returned as it is.
    """
    if isinstance(ref, ArchitectureSpec):
        return ref
    if isinstance(ref, dict) or (isinstance(ref, str) and ("\n" in ref or ref.lstrip().startswith("{"))):
        return load_spec(ref)
    path = Path(ref)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists():
        return load_spec(path)
    if str(ref) in list_presets():
        return load_preset(str(ref))
    raise SpecError(f"{str(ref)!r} is neither a preset ({', '.join(list_presets())}) nor a spec file")
