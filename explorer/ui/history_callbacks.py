"""Callbacks of the history tab: what the store remembers, as tables and plotly charts (no browser).

``refresh`` reads runs and designs from the store; ``curves_figure`` draws the loss and accuracy
curves of chosen runs; ``accuracy_vs_macs`` places every finished or cancelled run by its design's
MACs (at the run's input size) and its validation accuracy; ``load_design`` returns a stored
design's YAML for the editor (whose change event validates and applies it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..charts import PALETTE
from ..store import RunRow, Store
from .training_callbacks import ui_store

__all__ = ["DESIGN_HEADERS", "RUN_HEADERS", "accuracy_vs_macs", "curves_figure", "design_choices", "load_design",
           "refresh", "run_choices"]

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


def design_choices(store: Store) -> list[tuple[str, int]]:
    """(label, design id) for the "load into editor" picker."""
    return [(f"#{d.id} {d.name}", d.id) for d in store.list_designs()]


def accuracy_vs_macs(runs: list[RunRow]) -> go.Figure:
    """Validation accuracy (%) against MACs (millions) of every run that has both, one colour per dataset."""
    fig = go.Figure()
    by_dataset: dict[str, list[RunRow]] = {}
    for r in runs:
        if isinstance(r.metrics.get("val_accuracy"), (int, float)) and isinstance(r.metrics.get("macs"), (int, float)):
            by_dataset.setdefault(r.dataset, []).append(r)
    for i, (dataset, rows) in enumerate(sorted(by_dataset.items())):
        fig.add_trace(go.Scatter(
            x=[r.metrics["macs"] / 1e6 for r in rows], y=[100 * r.metrics["val_accuracy"] for r in rows],
            mode="markers", name=dataset, marker={"size": 10, "color": PALETTE[i % len(PALETTE)]},
            text=[f"run {r.id}: {r.design_name}, {r.metrics.get('steps')} steps at {r.config.get('input_size')}², "
                  f"{r.status}" for r in rows],
            hovertemplate="%{text}<br>%{x:.2f} MMACs, %{y:.1f} %<extra></extra>"))
    fig.update_layout(title="validation accuracy vs MACs (at the run's input size)", xaxis_title="MMACs",
                      yaxis_title="val accuracy (%)", height=380, margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return fig


def curves_figure(run_ids: list[Any] | None, store: Store | None = None) -> go.Figure:
    """Loss (left) and validation accuracy (right) against the step for the chosen runs."""
    store = store if store is not None else ui_store()
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "validation accuracy (%)"))
    for i, rid in enumerate(run_ids or []):
        try:
            run = store.get_run(int(rid))
        except (ValueError, TypeError):
            continue
        colour = PALETTE[i % len(PALETTE)]
        name = f"#{run.id} {run.design_name}"
        loss = [p for p in run.curve if p.train_loss is not None]
        acc = [p for p in run.curve if p.val_accuracy is not None]
        fig.add_trace(go.Scatter(x=[p.step for p in loss], y=[p.train_loss for p in loss], mode="lines",
                                 name=name, legendgroup=name, line={"color": colour}), row=1, col=1)
        fig.add_trace(go.Scatter(x=[p.step for p in acc], y=[100 * p.val_accuracy for p in acc], mode="lines+markers",
                                 name=name, legendgroup=name, showlegend=False, line={"color": colour}), row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=360, margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return fig


def refresh(store: Store | None = None, limit: int = 200) -> dict[str, Any]:
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
        "design_choices": [(f"#{d.id} {d.name}", d.id) for d in designs],
    }


def load_design(design_id: Any, store: Store | None = None) -> dict[str, Any]:
    """``{status, editor}``: the stored design's YAML for the editor, or only a status when there is none."""
    store = store if store is not None else ui_store()
    if design_id in (None, ""):
        return {"status": "Pick a stored design first."}
    try:
        design = store.get_design(int(design_id))
    except (ValueError, TypeError) as exc:
        return {"status": f"**Cannot load:** {exc}"}
    return {"status": f"Loaded design #{design.id} **{design.name}** into the editor.", "editor": design.spec_yaml}
