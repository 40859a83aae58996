"""Callbacks of the history tab: what the store remembers, as tables and charts (no browser).

``on_refresh`` reads runs and designs from the store, with every finished or cancelled run placed
by its design's MACs (at the run's input size) and its validation accuracy
(``explorer.charts.accuracy_vs_macs``); ``on_pick_runs`` draws the loss and accuracy curves of
the chosen runs (``explorer.charts.curves_figure``); ``on_load_design`` returns a stored
design's YAML for the editor (whose change event validates and applies it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..charts import Figure, accuracy_vs_macs, curves_figure
from ..store import DesignRow, RunRow, Store
from .training_callbacks import ui_store

__all__ = ["DESIGN_HEADERS", "RUN_HEADERS", "design_choices", "on_load_design", "on_pick_runs", "on_refresh",
           "run_choices"]

RUN_HEADERS = ["run", "status", "design", "dataset", "input", "steps", "val acc (%)", "train loss", "seconds",
               "MMACs", "started"]
DESIGN_HEADERS = ["design", "name", "runs", "best val acc (%)", "params (M)", "created"]


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else ""


def _num(x: Any, digits: int) -> Any:
    return round(float(x), digits) if isinstance(x, (int, float)) else ""


def _run_row(r: RunRow) -> list[Any]:
    m, c = r.metrics, r.config
    acc = m.get("val_accuracy")
    macs = m.get("macs")
    return [r.id, r.status, r.design_name, r.dataset, c.get("input_size", ""), m.get("steps", ""),
            _num(100 * acc, 2) if isinstance(acc, (int, float)) else "", _num(m.get("final_train_loss"), 4),
            _num(m.get("seconds"), 1), _num(macs / 1e6, 2) if isinstance(macs, (int, float)) else "",
            _when(r.started_at)]


def run_choices(runs: list[RunRow]) -> list[tuple[str, int]]:
    """(label, run id) for the run picker."""
    return [(f"#{r.id} {r.design_name} · {r.dataset} · {r.status}", r.id) for r in runs]


def design_choices(designs: list[DesignRow]) -> list[tuple[str, int]]:
    """(label, design id) for the "load into editor" picker."""
    return [(f"#{d.id} {d.name}", d.id) for d in designs]


def on_pick_runs(run_ids: list[Any] | None, store: Store | None = None) -> Figure:
    """Loss (left) and validation accuracy (right) against the step for the chosen runs (unknown ids skipped)."""
    store = store if store is not None else ui_store()
    runs = []
    for rid in run_ids or []:
        try:
            runs.append(store.get_run(int(rid)))
        except (ValueError, TypeError):
            continue
    return curves_figure(runs)


def on_refresh(store: Store | None = None, limit: int = 200) -> dict[str, Any]:
    """Everything the tab shows: ``{status, runs_table, designs_table, chart, run_choices, design_choices}``."""
    store = store if store is not None else ui_store()
    runs = store.list_runs(limit=limit)
    designs = store.list_designs()
    runs_per_design: dict[int, list[RunRow]] = {}
    for r in runs:
        runs_per_design.setdefault(r.design_id, []).append(r)
    designs_table = []
    for d in designs:
        rs = runs_per_design.get(d.id, [])
        accs = [r.metrics["val_accuracy"] for r in rs if isinstance(r.metrics.get("val_accuracy"), (int, float))]
        params = next((r.metrics["params"] for r in rs if isinstance(r.metrics.get("params"), int)), None)
        designs_table.append([d.id, d.name, len(rs), _num(100 * max(accs), 2) if accs else "",
                              _num(params / 1e6, 3) if params else "", _when(d.created_at)])
    return {
        "status": f"{len(runs)} run(s) and {len(designs)} design(s) in `{store.path}`.",
        "runs_table": [_run_row(r) for r in runs],
        "designs_table": designs_table,
        "chart": accuracy_vs_macs(runs),
        "run_choices": run_choices(runs),
        "design_choices": design_choices(designs),
    }


def on_load_design(design_id: Any, store: Store | None = None) -> dict[str, Any]:
    """``{status, editor}``: the stored design's YAML for the editor, or only a status when there is none."""
    store = store if store is not None else ui_store()
    if design_id in (None, ""):
        return {"status": "Pick a stored design first."}
    try:
        design = store.get_design(int(design_id))
    except (ValueError, TypeError) as exc:
        return {"status": f"**Cannot load:** {exc}"}
    return {"status": f"Loaded design #{design.id} **{design.name}** into the editor.", "editor": design.spec_yaml}
