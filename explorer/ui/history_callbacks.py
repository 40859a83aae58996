"""Callbacks of the history tab: what the store remembers, as tables and charts (no browser).

``on_refresh`` reads runs and designs from the store, with every finished or cancelled run placed
by its design's MACs (at the run's input size) and its validation accuracy
(``explorer.charts.accuracy_vs_macs``); ``on_pick_runs`` draws the loss and accuracy curves of
the chosen runs (``explorer.charts.curves_figure``); ``on_load_design`` returns a stored
design's YAML for the editor (whose change event validates and applies it).

Every number says what it is for: a run trains a *training copy* of its design, retargeted to the
dataset's input size and classes (e.g. 32², 10 classes), so its params and MACs are that copy's
and sit beside the design's own (as designed, e.g. 224², 1000 classes); a latency row says which
network was timed (the design at its own input, batch 1), with what and where.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..charts import Figure, accuracy_vs_macs, curves_figure
from ..spec import SpecError
from ..spec_yaml import parse_spec_text
from ..store import DesignRow, RunRow, Store
from .training_callbacks import ui_store

__all__ = ["DESIGN_HEADERS", "LATENCY_HEADERS", "RUN_HEADERS", "design_choices", "on_load_design", "on_pick_runs",
           "on_pin_stored_design", "on_refresh", "on_select_run", "run_choices"]

RUN_HEADERS = ["run", "status", "design", "dataset", "trained at", "steps", "val acc (%)", "train loss", "seconds",
               "params (M) · training copy", "MMACs · training copy", "started"]
DESIGN_HEADERS = ["design", "name", "runs", "best val acc (%)", "params (M) as designed", "as designed",
                  "params (M) · training copy", "created"]
LATENCY_HEADERS = ["measurement", "design", "network timed", "backend", "where", "median ms", "p90 ms", "cv", "runs",
                   "threads", "measured"]


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else ""


def _num(x: Any, digits: int) -> Any:
    return round(float(x), digits) if isinstance(x, (int, float)) else ""


def _trained_at(c: dict[str, Any]) -> str:
    """'32², 10 classes': the input and classes a run's training copy was built for."""
    size, classes = c.get("input_size"), c.get("num_classes")
    parts = [f"{size}²" if size else "", f"{classes} classes" if classes else ""]
    return ", ".join(p for p in parts if p)


def _as_designed(spec_yaml: str) -> str:
    """'224², 1000 classes': the design's own input and classes (what its own params are counted at)."""
    try:
        data = parse_spec_text(spec_yaml)
    except SpecError:
        return ""
    size = (data.get("input") or {}).get("size", 224) if isinstance(data.get("input"), dict) else 224
    size = size[-1] if isinstance(size, list) and size else size
    return f"{size}², {data.get('num_classes', 1000)} classes"


def _run_row(r: RunRow) -> list[Any]:
    m, c = r.metrics, r.config
    acc = m.get("val_accuracy")
    macs, params = m.get("macs"), m.get("params")
    return [r.id, r.status, r.design_name, r.dataset, _trained_at(c), m.get("steps", ""),
            _num(100 * acc, 2) if isinstance(acc, (int, float)) else "", _num(m.get("final_train_loss"), 4),
            _num(m.get("seconds"), 1), _num(params / 1e6, 3) if isinstance(params, (int, float)) else "",
            _num(macs / 1e6, 2) if isinstance(macs, (int, float)) else "", _when(r.started_at)]


def _latency_rows(store: Store, names: dict[int, DesignRow]) -> list[list[Any]]:
    """Every stored latency measurement, newest first, saying which network was timed and how."""
    rows = []
    for r in reversed(store.list_latency()):
        d = names.get(r["design_id"])
        if d is None:
            try:
                d = names[r["design_id"]] = store.get_design(r["design_id"])
            except ValueError:
                continue
        timed = f"as designed: {_as_designed(d.spec_yaml)}, batch 1"
        rows.append([r["id"], d.name, timed, r["backend"], r["device"], _num(r["median_ms"], 3),
                     _num(r["p90_ms"], 3), _num(r["cv"], 3), r["runs"] or "", r["threads"] or "",
                     _when(r["created_at"])])
    return rows


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
    counted: dict[int, int] = {}  # design id -> its own params, as the explorer counted it (latest count)
    for row in store.list_analyses():
        counted[row["design_id"]] = row["params"]
    designs_table = []
    for d in designs:
        rs = runs_per_design.get(d.id, [])
        accs = [r.metrics["val_accuracy"] for r in rs if isinstance(r.metrics.get("val_accuracy"), (int, float))]
        params = next((r.metrics["params"] for r in rs if isinstance(r.metrics.get("params"), int)), None)
        trained_at = next((_trained_at(r.config) for r in rs if _trained_at(r.config)), "")
        own = counted.get(d.id)
        designs_table.append([d.id, d.name, len(rs), _num(100 * max(accs), 2) if accs else "",
                              _num(own / 1e6, 3) if own else "", _as_designed(d.spec_yaml),
                              f"{params / 1e6:.3f} ({trained_at})" if params else "", _when(d.created_at)])
    latency_table = _latency_rows(store, {d.id: d for d in designs})
    return {
        "status": f"{len(runs)} run(s), {len(designs)} design(s) and {len(latency_table)} latency measurement(s) "
                  f"in `{store.path}`.",
        "runs_table": [_run_row(r) for r in runs],
        "designs_table": designs_table,
        "latency_table": latency_table,
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


def on_pin_stored_design(design_id: Any, store: Store | None = None) -> dict[str, Any]:
    """The stored design to pin as the baseline: ``{status[, pin_yaml, pin_label]}`` (see ``on_pin_found``)."""
    store = store if store is not None else ui_store()
    if design_id in (None, ""):
        return {"status": "Pick a stored design (or click a run) first."}
    try:
        design = store.get_design(int(design_id))
    except (ValueError, TypeError) as exc:
        return {"status": f"**Cannot pin:** {exc}"}
    return {"status": "", "pin_yaml": design.spec_yaml, "pin_label": f"{design.name} (#{design.id})"}


def on_select_run(run_id: Any, store: Store | None = None) -> dict[str, Any]:
    """A run picked in the runs table: ``{status[, design]}``, its design's id for "Load" and "Pin as baseline".

    The design is the one the run was started from (as designed); the run itself trained a copy of it
    retargeted to the dataset (its input size and classes), which the runs table's numbers are for.
    """
    store = store if store is not None else ui_store()
    try:
        run = store.get_run(int(run_id))
    except (ValueError, TypeError) as exc:
        return {"status": f"**Cannot pick that run:** {exc}"}
    trained = _trained_at(run.config)
    return {"status": f"Run #{run.id} was trained from design #{run.design_id} **{run.design_name}** (as designed; "
                      f"the run trained its copy{' at ' + trained if trained else ''}): **Load into editor** or "
                      "**Pin as baseline**.", "design": run.design_id}
