"""The preset catalogue: AttendNeXt and its peers as YAML data in ``assets/presets``.

This module only finds the files (torch-free); ``explorer.design.load_preset`` reads one
(through ``load_design``, like every other design). The folder is found beside the package in a
source checkout and inside the installed distribution otherwise (``pyproject.toml`` ships
``assets/`` as package data).
"""

from __future__ import annotations

from pathlib import Path

from .spec import SpecError

__all__ = ["PRESET_ORDER", "assets_dir", "list_presets", "preset_path"]

#: the order in which presets are shown: ours first (the reconstruction, then what our search derived from
#: it: ``benchmarks/rederive_attendnext.py``), then the peers of the paper's comparison
PRESET_ORDER = ("attendnext", "attendnext_searched", "mobilenetv3_large", "mobilenetv3_small", "fbnet_c",
                "mobileone_s1", "mobilevit_xs")


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
    """The YAML file of preset ``name``; ``SpecError`` naming the presets if there is none."""
    path = assets_dir() / "presets" / f"{name}.yaml"
    if not path.is_file():
        raise SpecError(f"no preset named {name!r}; presets: {', '.join(list_presets())}")
    return path
