"""Callbacks of the search tab: plain functions from the tab's inputs to its outputs (no browser).

``on_search`` runs a constraint-guided evolution from the current design (``explorer.search``)
and returns ``{status, chart, table, best_yaml}``; while it runs, ``on_stop_search`` with the
same session stops it after the design being evaluated. ``on_load_best`` puts the best design's
YAML into the editor, whose change event validates and applies it.
"""

from __future__ import annotations

import threading
from typing import Any

from ..charts import search_chart
from ..search import Constraints, SearchResult, search
from ..spec import SpecError
from .render import Progress
from .state import load_state

__all__ = ["OBJECTIVES", "TABLE_HEADERS", "on_load_best", "on_search", "on_stop_search"]

OBJECTIVES = [("fewest MACs", "macs"), ("fewest params", "params"), ("lowest predicted latency", "latency")]
TABLE_HEADERS = ["step", "mutation", "params (M)", "GMACs", "pred. ms", "kept", "why not"]

#: each browser session's running search: its stop event
_RUNNING: dict[str, threading.Event] = {}
_RUNNING_LOCK = threading.Lock()


def _table(result: SearchResult) -> list[list[Any]]:
    return [[c.step, c.mutation, round(c.params / 1e6, 3), round(c.macs / 1e9, 4),
             round(c.latency_ms, 2) if c.latency_ms is not None else "", "yes" if c.feasible else "no",
             "; ".join(c.reasons)] for c in result.history]


def on_search(
    spec_yaml: str, objective: str, steps: float, max_params_m: float | None, max_gmacs: float | None,
    max_latency_ms: float | None, device: str, antialias: bool, condensers_early: bool, seed: float = 0,
    progress: Progress | None = None, cancel: threading.Event | None = None, session: str = "local",
) -> dict[str, Any]:
    """Search from the current design; ``{status, chart, table, best_yaml}`` (errors: status only).

    ``cancel`` (or ``on_stop_search(session)`` while it runs) stops the search early.
    """
    stop = cancel if cancel is not None else threading.Event()
    with _RUNNING_LOCK:
        _RUNNING[session] = stop
    try:
        spec = load_state(spec_yaml)
        constraints = Constraints(
            max_params=int(max_params_m * 1e6) if max_params_m else None,
            max_macs=int(max_gmacs * 1e9) if max_gmacs else None,
            max_latency_ms=float(max_latency_ms) if max_latency_ms else None, device=device or "host",
            antialias_downsampling=bool(antialias), condensers_early=bool(condensers_early))
        n = int(steps or 0)
        report = (lambda step, total, msg: progress(step / max(total, 1), msg)) if progress else None
        result = search(spec, constraints, objective or "macs", steps=n, seed=int(seed or 0), progress=report,
                        cancel=stop)
    except (SpecError, ValueError, FileNotFoundError) as exc:
        return {"status": f"**Search not run:** {exc}", "chart": None, "table": None, "best_yaml": ""}
    finally:
        with _RUNNING_LOCK:
            if _RUNNING.get(session) is stop:
                del _RUNNING[session]
    b = result.best
    status = (f"Evaluated {len(result.history)} designs, {result.rejected} rejected by a constraint. "
              f"**Best**: step {b.step} ({b.mutation}), {b.params / 1e6:.3f} M params, {b.macs / 1e9:.3f} GMACs"
              + (f", {b.latency_ms:.2f} ms predicted" if b.latency_ms is not None else "")
              + ". *Load the best design* puts it in the editor.")
    return {"status": status, "chart": search_chart(result), "table": _table(result), "best_yaml": b.spec_yaml}


def on_stop_search(session: str = "local") -> str:
    """Stop the session's running search after the design it is evaluating."""
    with _RUNNING_LOCK:
        event = _RUNNING.get(session)
    if event is None:
        return "No search is running."
    event.set()
    return "Stopping after the current design…"


def on_load_best(best_yaml: str) -> dict[str, Any]:
    """The best design's YAML for the editor (whose change event validates and applies it)."""
    if not best_yaml:
        return {"status": "Run a search first."}
    return {"editor": best_yaml, "status": "Loaded the best design into the editor (undo brings the old one back)."}
