"""The graph view's callback: a click on a node selects its block in the editor.

``on_select_graph_node(key, spec_yaml)`` is what the page runs when a node is clicked (the node's
``key`` is the editor address of the written block it comes from, ``BlockRef.key``): the block
picker takes the key and the form shows that block, as a pick in the picker does.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from . import callbacks as cb
from .state import load_state, selected_ref

__all__ = ["on_select_graph_node"]


def on_select_graph_node(key: str | None, spec_yaml: str) -> dict[str, Any]:
    """Select the block of a clicked node (an unknown key selects nothing and changes nothing)."""
    spec = load_state(spec_yaml)
    ref = selected_ref(spec, key)
    if ref.key != (key or "").strip():
        return {}
    return {"picker": gr.update(value=ref.key), **cb.on_select_block(ref.key, spec_yaml)}
