"""A design report to hand around: one self-contained HTML file, readable offline in any browser.

``report_html(spec, records)`` returns the page: the design's name and description, its totals
(params, MACs, peak activation memory, model size), its charts (the architecture diagram, per-unit
MACs and parameters, its place among the presets; ``explorer.charts``), the per-unit table, the YAML
that rebuilds it, and, where a store holds them (``records_from_store``), its latency measurements and
its training runs with their curves. plotly's JavaScript is inlined once in the page's head, so the
file needs no network to open; every text that comes from the design or the store (names, YAML,
labels, errors) is HTML-escaped, and the figures' JSON is embedded so that no ``</script>`` inside
it can end its script element.

A design's store records are those of the designs whose canonical hash (``explorer.store.spec_hash``)
equals this design's, plus the trained copies its runs name (``trained_design_id``): the same design
under another YAML layout is found, a renamed or retargeted one is another design.

``write_report(spec, path, store)`` writes the file (``explorer report``, the app's "Download report").
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from . import __version__
from .analysis import Analysis, analyze
from .charts import accuracy_vs_macs, architecture_diagram, block_bars, curves_figure, preset_points, preset_scatter
from .spec import ArchitectureSpec, dump_spec
from .store import RunRow, Store, spec_hash

__all__ = ["StoreRecords", "records_from_store", "report_html", "write_report"]

#: at most this many runs (newest first) are listed and drawn
MAX_RUNS = 50
#: at most this many latency measurements (newest first)
MAX_LATENCY = 200


@dataclass
class StoreRecords:
    """What a store holds about one design: latency rows (``Store.list_latency`` dicts plus ``design_name``,
    the stored design measured: the design itself or a run's trained copy) and runs with their curves."""

    source: str
    latency: list[dict[str, Any]] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)


def records_from_store(store: Store, spec: ArchitectureSpec) -> StoreRecords:
    """The latency measurements and training runs ``store`` holds for ``spec`` (newest first)."""
    digest = spec_hash(dump_spec(spec))
    ids = {d.id for d in store.list_designs(limit=1_000_000) if d.spec_hash == digest}
    runs = [r for r in store.list_runs(limit=1_000_000) if r.design_id in ids][:MAX_RUNS]
    trained = {int(r.config["trained_design_id"]) for r in runs
               if isinstance(r.config.get("trained_design_id"), int)}
    names = {design_id: store.get_design(design_id).name for design_id in ids | trained}
    latency = [{**row, "design_name": names[design_id]} for design_id in sorted(ids | trained)
               for row in store.list_latency(design_id)]
    latency.sort(key=lambda row: (row.get("created_at") or 0.0, row.get("id") or 0), reverse=True)
    return StoreRecords(source=str(store.path), latency=latency[:MAX_LATENCY],
                        runs=[store.get_run(r.id) for r in runs])


# ----------------------------------------------------------------------------- pieces of the page

CSS = """
body {font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1200px;
      padding: 16px 24px 48px; color: #1f2937;}
h1 {margin-bottom: 4px;} h2 {margin-top: 36px; border-bottom: 1px solid #e5e7eb; padding-bottom: 4px;}
.sub {color: #6b7280; font-size: 13px;}
.metrics {display: flex; gap: 10px; flex-wrap: wrap; margin: 16px 0;}
.metric {flex: 1 1 150px; border: 1px solid #e5e7eb; border-radius: 8px; padding: 8px 12px; background: #f9fafb;}
.metric .label {font-size: 12px; color: #6b7280; text-transform: uppercase;}
.metric .value {font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums;}
table {border-collapse: collapse; font-size: 13px; width: 100%;}
th, td {border-bottom: 1px solid #e5e7eb; padding: 4px 8px; text-align: left; vertical-align: top;}
td.num, th.num {text-align: right; font-variant-numeric: tabular-nums;}
pre {background: #f3f4f6; padding: 12px; border-radius: 6px; overflow-x: auto; font-size: 12px;}
.figure {margin: 8px 0 16px;}
.note {color: #6b7280; font-size: 13px;}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _figure_html(fig: go.Figure, div_id: str) -> str:
    """A div and the script that draws ``fig`` into it (plotly.js is already on the page).

    The JSON is embedded with ``<``, ``>`` and ``&`` as ``\\u003c`` … escapes, so text in the figure
    (a unit named ``</script>``) cannot close the script element; JSON parses them back unchanged.
    """
    data = pio.to_json(fig, validate=False)
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (f'<div class="figure" id="{div_id}"></div>\n<script>(function() {{var f = {data};\n'
            f'Plotly.newPlot("{div_id}", f.data, f.layout, {{responsive: true, displaylogo: false}});}})();</script>')


def _metric(label: str, value: str, exact: int | None = None) -> str:
    data = f' data-value="{exact}"' if exact is not None else ""
    return (f'<div class="metric"{data}><div class="label">{_esc(label)}</div>'
            f'<div class="value">{_esc(value)}</div></div>')


def _count(n: int) -> str:
    """190,912 below a million; 3.983 M, 1.204 G above."""
    for scale, prefix in ((1e9, "G"), (1e6, "M")):
        if n >= scale:
            return f"{n / scale:.3f} {prefix}"
    return f"{n:,}"


def _bytes(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape[1:])


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool], table_id: str) -> str:
    def cells(tag: str, values: Sequence[Any]) -> str:
        return "".join(f'<{tag} class="{"num" if n else ""}">{_esc(v)}</{tag}>'
                       for v, n in zip(values, numeric, strict=True))

    head = cells("th", headers)
    body = "\n".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M UTC") if t else "-"


def _num(x: Any, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and not isinstance(x, bool) else "-"


def _latency_section(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="note" id="no-latency">No latency measurements of this design in the store.</p>'
    table = _table(
        ["when", "design (as measured)", "backend", "device", "threads", "runs", "median ms", "p90 ms", "cv"],
        [[_when(r.get("created_at")), r.get("design_name", ""), r.get("backend", ""), r.get("device", ""),
          _num(r.get("threads"), "d"), _num(r.get("runs"), "d"), _num(r.get("median_ms"), ".3f"),
          _num(r.get("p90_ms"), ".3f"), _num(r.get("cv"), ".3f")] for r in rows],
        [False, False, False, False, True, True, True, True, True], "latency-table")
    return table


def _runs_section(runs: list[RunRow]) -> str:
    if not runs:
        return '<p class="note" id="no-runs">No training runs of this design in the store.</p>'
    table = _table(
        ["run", "dataset", "status", "steps", "input", "val accuracy", "final loss", "params", "MMACs", "started"],
        [[r.id, r.dataset, r.status, _num(r.metrics.get("steps"), "d"), _num(r.config.get("input_size"), "d"),
          f"{100 * r.metrics['val_accuracy']:.1f} %" if isinstance(r.metrics.get("val_accuracy"), (int, float))
          else "-", _num(r.metrics.get("final_train_loss"), ".4f"), _num(r.metrics.get("params"), ",d"),
          _num(r.metrics.get("macs", 0) / 1e6 if isinstance(r.metrics.get("macs"), (int, float)) else None, ".2f"),
          _when(r.started_at)] for r in runs],
        [True, False, False, True, True, True, True, True, True, False], "runs-table")
    parts = [table]
    if any(r.curve for r in runs):
        parts.append(_figure_html(curves_figure([r for r in runs if r.curve]), "fig-curves"))
    if any(isinstance(r.metrics.get("val_accuracy"), (int, float)) for r in runs):
        parts.append(_figure_html(accuracy_vs_macs(runs), "fig-accuracy"))
    return "\n".join(parts)


def report_html(
    spec: ArchitectureSpec,
    records: StoreRecords | None = None,
    *,
    analysis: Analysis | None = None,
    with_presets: bool = True,
    generated_at: float | None = None,
) -> str:
    """The whole report page for ``spec`` (a validated design) as one HTML string.

    ``records``: what a store holds about it (``records_from_store``); ``None`` leaves the store
    sections out. ``analysis``: a count already made of ``spec`` (else counted here).
    ``with_presets``: draw the design among the presets (counts every preset once per process).
    """
    a = analysis if analysis is not None else analyze(spec)
    names = [st.name for st in spec.stages]
    repeats = [st.repeat for st in spec.stages]
    yaml_text = dump_spec(spec)
    when = _when(generated_at if generated_at is not None else time.time())
    metrics = "".join([
        _metric("params", _count(a.params), a.params),
        _metric("MACs", _count(a.macs), a.macs),
        _metric("peak activations", _bytes(a.peak_activation_bytes), a.peak_activation_bytes),
        _metric("size fp32 / int8", f"{_bytes(a.size_fp32_bytes)} / {_bytes(a.size_int8_bytes)}"),
        _metric("input", _shape(a.input_shape)),
        _metric("units", str(len(a.blocks))),
    ])
    figures = [_figure_html(architecture_diagram(a, names, repeats), "fig-diagram"),
               _figure_html(block_bars(a, names), "fig-bars")]
    if with_presets:
        figures.append(_figure_html(preset_scatter(preset_points(), a), "fig-presets"))
    units = _table(
        ["unit", "place", "type", "output C×H×W", "params", "MACs (M)", "peak act. (KiB)"],
        [[b.name, b.place, b.type, _shape(b.out_shape), f"{b.params:,}", f"{b.macs / 1e6:,.2f}",
          f"{b.peak_bytes / 2**10:,.0f}"] for b in a.blocks],
        [False, False, False, True, True, True, True], "units-table")
    uncounted = (f'<p class="note">fvcore does not count {a.uncounted_macs / 1e9:.4f} G multiply-accumulates of '
                 "attention products; they are shown here and not added to MACs.</p>" if a.uncounted_macs else "")
    store_parts = ""
    if records is not None:
        store_parts = (
            f'<h2 id="latency">Latency measurements</h2>\n<p class="sub">from {_esc(records.source)}</p>\n'
            f"{_latency_section(records.latency)}\n"
            f'<h2 id="runs">Training runs</h2>\n{_runs_section(records.runs)}\n'
        )
    description = f'<p id="description">{_esc(spec.description)}</p>' if spec.description else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="AttendNeXt Explorer {_esc(__version__)}">
<title>{_esc(spec.name)}: design report</title>
<style>{CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<h1 id="title">{_esc(spec.name)}</h1>
<p class="sub">Design report by AttendNeXt Explorer {_esc(__version__)}, {_esc(when)}. Counts are fvcore's at batch 1,
fp32, for the network as deployed (re-parameterisable blocks folded).</p>
{description}
<div class="metrics" id="totals">{metrics}</div>
{uncounted}
<h2 id="charts">Charts</h2>
{"".join(figures)}
<h2 id="units">Units in execution order</h2>
{units}
{store_parts}
<h2 id="yaml">The design (YAML)</h2>
<p class="sub">Save this text as a .yaml file and load it with <code>explorer summarize FILE</code> or the explorer's
"Load YAML".</p>
<pre id="spec-yaml">{_esc(yaml_text)}</pre>
</body>
</html>
"""


def write_report(spec: ArchitectureSpec, path: str | os.PathLike[str], store: Store | None = None,
                 *, with_presets: bool = True) -> Path:
    """Write ``report_html(spec, records of store)`` to ``path`` (atomically); the path written."""
    out = Path(path).expanduser()
    if out.is_dir():
        raise ValueError(f"{out} is a folder; give -o a file name such as design.html")
    if not out.parent.exists():
        raise FileNotFoundError(f"folder {out.parent} does not exist; create it or give -o another path")
    records = records_from_store(store, spec) if store is not None else None
    text = report_html(spec, records, with_presets=with_presets)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out

