"""The Gradio explorer: the app wires components to pure functions from ``explorer``.

``explorer.ui.show(design)`` opens it inline in a notebook cell (``explorer.ui.notebook``); it is
imported on first use, so ``import explorer.ui.<module>`` does not pull in Gradio and the app.
"""

from __future__ import annotations

from typing import Any

__all__ = ["show"]


def __getattr__(name: str) -> Any:
    if name == "show":
        from .notebook import show

        return show
    raise AttributeError(f"module 'explorer.ui' has no attribute {name!r}")
