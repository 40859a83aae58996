"""The distribution ships every package of the source tree and the assets as package data."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import entry_points, version
from pathlib import Path

import explorer
import explorer.cli

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
    assets = ROOT / "assets"
    shipped = {p.relative_to(assets).as_posix() for pattern in patterns for p in assets.glob(pattern)}
    presets = {f"presets/{p.name}" for p in (ROOT / "assets" / "presets").glob("*.yaml")}
    assert presets and presets <= shipped


def test_console_script_loads_the_cli() -> None:
    """The installed ``explorer`` command resolves to the function the CLI tests drive."""
    (script,) = entry_points(group="console_scripts", name="explorer")
    assert script.load() is explorer.cli.main


def test_one_version_for_the_package_and_its_metadata() -> None:
    """pyproject reads its version from ``explorer.__version__``; the installed metadata agrees.

    A failure after a version bump means the install is stale: run ``make install`` again.
    """
    assert version("attendnext-explorer") == explorer.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", explorer.__version__)


def test_the_graph_views_javascript_ships_with_its_licences() -> None:
    """Cytoscape.js and the dagre layout are package data of ``explorer.ui`` (never fetched at run time)."""
    from explorer.ui.graph_view import SCRIPTS, STATIC_DIR, graph_head

    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["explorer.ui"]
    ui = STATIC_DIR.parent
    shipped = {p.relative_to(ui).as_posix() for pattern in patterns for p in ui.glob(pattern)}
    for name in (*SCRIPTS, "LICENSE.cytoscape", "LICENSE.cytoscape-dagre", "LICENSE.dagre"):
        assert f"static/{name}" in shipped, name
    head = graph_head()  # the page loads them from this server, never from a CDN
    assert head.count("<script") == len(SCRIPTS) and "http" not in head
