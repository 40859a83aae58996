"""The distribution ships every package of the source tree and the assets as package data."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_source_package_is_listed() -> None:
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("blocks", "explorer")
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found, "no packages found under blocks/ and explorer/"
    assert found - listed == set(), f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert listed - found == {"explorer.assets"}, f"listed but absent: {sorted(listed - found - {'explorer.assets'})}"


def test_assets_ship_as_package_data() -> None:
    tool = _pyproject()["tool"]["setuptools"]
    assert tool["package-dir"]["explorer.assets"] == "assets"
    patterns = tool["package-data"]["explorer.assets"]
    shipped = {p.relative_to(ROOT / "assets").as_posix() for pattern in patterns for p in (ROOT / "assets").glob(pattern)}
    presets = {f"presets/{p.name}" for p in (ROOT / "assets" / "presets").glob("*.yaml")}
    assert presets and presets <= shipped


def test_console_script_points_at_the_cli() -> None:
    assert _pyproject()["project"]["scripts"]["explorer"] == "explorer.cli:main"
