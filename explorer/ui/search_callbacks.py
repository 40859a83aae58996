"""Callbacks of the search tab: plain functions from the tab's inputs to its outputs (no browser)."""

from __future__ import annotations

import threading
from typing import Any, Callable

import plotly.graph_objects as go

from ..search import Constraints, SearchResult, search
from ..spec import SpecError, load_spec, parse_spec_text

__all__ = ["OBJECTIVES", "TABLE_HEADERS", "Progress", "load_best", "run_search", "search_chart"]

Progress = Callable[[float, str], None]

OBJECTIVES = [("fewest MACs", "macs"), ("fewest params", "params"), ("lowest predicted latency", "latency")]
TABLE_HEADERS = ["step", "mutation", "params (M)", "GMACs", "pred. ms", "kept", "why not"]


def search_chart(result: SearchResult) -> go.Figure:
    """Every evaluated design, MACs vs params; kept ones green, rejected grey, the best a star."""
    fig = go.Figure()
    for feasible, colour, label in ((True, "#059669", "kept (meets the constraints)"),
                                    (False, "#9ca3af", "rejected")):
        rows = [c for c in result.history if c.feasible == feasible]
        fig.add_trace(go.Scatter(
            x=[c.macs / 1e9 for c in rows], y=[c.params / 1e6 for c in rows], mode="markers", name=label,
            marker={"color": colour, "size": 8},
            text=[f"step {c.step}: {c.mutation}" + (f"<br>{'; '.join(c.reasons)}" if c.reasons else "") for c in rows],
            hovertemplate="%{text}<br>%{x:.3f} GMACs, %{y:.3f} M params<extra></extra>"))
    b = result.best
    fig.add_trace(go.Scatter(x=[b.macs / 1e9], y=[b.params / 1e6], mode="markers", name="best",
                             marker={"symbol": "star", "size": 18, "color": "#dc2626"},
                             hovertemplate=f"best (step {b.step}: {b.mutation})<extra></extra>"))
    fig.update_layout(xaxis_title="GMACs", yaxis_title="params (M)", height=420, margin={"l": 50, "r": 10, "t": 30, "b": 40},
                      legend={"orientation": "h", "y": 1.08})
    return fig


def _table(result: SearchResult) -> list[list[Any]]:
    return [[c.step, c.mutation, round(c.params / 1e6, 3), round(c.macs / 1e9, 4),
             round(c.latency_ms, 2) if c.latency_ms is not None else "", "yes" if c.feasible else "no",
             "; ".join(c.reasons)] for c in result.history]


def run_search(
    spec_yaml: str, objective: str, steps: float, max_params_m: float | None, max_gmacs: float | None,
    max_latency_ms: float | None, device: str, antialias: bool, condensers_early: bool, seed: float = 0,
    progress: Progress | None = None, cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Search from the current design; ``{status, chart, table, best_yaml}`` (errors: status only)."""
    try:
        spec = load_spec(parse_spec_text(spec_yaml))
        constraints = Constraints(
            max_params=int(max_params_m * 1e6) if max_params_m else None,
            max_macs=int(max_gmacs * 1e9) if max_gmacs else None,
            max_latency_ms=float(max_latency_ms) if max_latency_ms else None, device=device or "host",
            antialias_downsampling=bool(antialias), condensers_early=bool(condensers_early))
        n = int(steps or 0)
        report = (lambda step, total, msg: progress(step / max(total, 1), msg)) if progress else None
        result = search(spec, constraints, objective or "macs", steps=n, seed=int(seed or 0), progress=report,
                        cancel=cancel)
    except (SpecError, ValueError, FileNotFoundError) as exc:
        return {"status": f"**Search not run:** {exc}", "chart": None, "table": None, "best_yaml": ""}
    b = result.best
    status = (f"Evaluated {len(result.history)} designs, {result.rejected} rejected by a constraint. "
              f"**Best**: step {b.step} ({b.mutation}), {b.params / 1e6:.3f} M params, {b.macs / 1e9:.3f} GMACs"
              + (f", {b.latency_ms:.2f} ms predicted" if b.latency_ms is not None else "")
              + ". *Load the best design* puts it in the editor.")
    return {"status": status, "chart": search_chart(result), "table": _table(result), "best_yaml": b.spec_yaml}


def load_best(best_yaml: str) -> dict[str, Any]:
    """The best design's YAML for the editor (whose change event validates and applies it)."""
    if not best_yaml:
        return {"status": "Run a search first."}
    return {"editor": best_yaml, "status": "Loaded the best design into the editor (undo brings the old one back)."}
