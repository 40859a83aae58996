"""Every plotly figure of the explorer, in one place and one palette.

Design figures, drawn from an ``Analysis`` (no counting happens here):

- ``block_bars``: per-unit MACs and parameters, two bar rows sharing the unit axis;
- ``preset_scatter``: the design among the presets, MACs (x) against parameters (y);
- ``architecture_diagram``: stages as bands (resolution, repeats) and units as bars whose
  height is the output width (log scale); details on hover.

Figures of the other tabs: ``latency_figure`` (latency against MACs), ``loss_figure`` and
``accuracy_figure`` (a training run's curves), ``accuracy_vs_macs`` and ``curves_figure`` (stored
runs), ``search_front_figure`` (a multi-objective search: its candidates, front and the presets as
references) and ``hypervolume_figure`` (its hypervolume after every evaluation).

One palette: a block type has one colour in every chart (``block_colour``: the registry's order
into ``PALETTE``); other series (datasets, runs) cycle through ``PALETTE``; the fixed roles (the
design, the presets, kept and rejected candidates, loss and accuracy) have the named colours below.

``preset_points`` analyses every preset once per process (cached): the scatter's background.
Figures are plain ``plotly.graph_objects.Figure`` objects, so the UI shows them in ``gr.Plot``
and the tests read their data directly.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypedDict

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from blocks import list_blocks

from .analysis import Analysis, BlockRow
from .compare import StageTotals
from .latency.op_profile import OpRow
from .search import OBJECTIVES
from .search.view import ViewCandidate
from .store import RunRow, StepRow

__all__ = [
    "PALETTE",
    "Figure",
    "LatencyPoint",
    "PresetPoint",
    "accuracy_figure",
    "accuracy_vs_macs",
    "architecture_diagram",
    "block_bars",
    "block_colour",
    "compare_stages_figure",
    "curves_figure",
    "latency_figure",
    "loss_figure",
    "objective_label",
    "op_time_figure",
    "objective_value",
    "preset_points",
    "preset_scatter",
    "front_axes",
    "hypervolume_figure",
    "search_front_figure",
    "stage_label",
]

#: the one palette (plotly's qualitative "Plotly"): block types in registry order, then series, cycled
PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880",
           "#FF97FF", "#FECB52")
#: a parallel group (not a registered block) and a type the registry does not know
PARALLEL_COLOUR = "#7f7f7f"
#: fixed roles: the current design's star, the presets' dots, kept / rejected search candidates,
#: a training run's loss and accuracy curves
DESIGN_COLOUR = "#dc2626"
PRESET_COLOUR = "#8c9bb5"
KEPT_COLOUR = "#059669"
REJECTED_COLOUR = "#9ca3af"
LOSS_COLOUR = "#2563eb"
ACCURACY_COLOUR = "#059669"
#: what every function here returns (so the UI names the type without importing plotly)
Figure = go.Figure
FONT = dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=12)


@lru_cache(maxsize=1)
def _block_colours() -> dict[str, str]:
    return {entry.name: PALETTE[i % len(PALETTE)] for i, entry in enumerate(list_blocks())}


def block_colour(block_type: str) -> str:
    """The colour of ``block_type`` in every chart: its place in the block registry, into ``PALETTE``."""
    return _block_colours().get(block_type, PARALLEL_COLOUR)


@dataclass(frozen=True)
class PresetPoint:
    """A preset's place on the scatter."""

    name: str
    params: int
    macs: int
    input_size: str


def stage_label(stage: int, n_stages: int, names: Sequence[str] = ()) -> str:
    """'stem', 'stage 2 · dcac-56' or 'head' for a unit's stage number."""
    if stage == 0:
        return "stem"
    if stage > n_stages:
        return "head"
    name = names[stage - 1] if stage - 1 < len(names) and names[stage - 1] else ""
    return f"stage {stage}" + (f" · {name}" if name else "")


def _n_stages(analysis: Analysis) -> int:
    return max((r.stage for r in analysis.blocks if not r.address.is_head), default=0)


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape[1:])


def _hover(row: BlockRow) -> str:
    return (f"<b>{row.name}</b> · {row.type}<br>{row.place}<br>{_shape(row.in_shape)} → {_shape(row.out_shape)}"
            f"<br>params {row.params:,}<br>MACs {row.macs:,}"
            + (f" (+{row.uncounted_macs:,} attention)" if row.uncounted_macs else "")
            + f"<br>peak activations {row.peak_bytes / 2**10:,.0f} KiB")


def _base_layout(title: str, height: int) -> dict:
    return dict(
        title=dict(text=title, x=0.01, font=dict(size=14)),
        height=height,
        margin=dict(l=56, r=16, t=44, b=40),
        font=FONT,
        plot_bgcolor="white",
        paper_bgcolor="white",
        hoverlabel=dict(font=FONT),
    )


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """A figure from plain trace and layout dicts.

    plotly's per-property validation costs ~10 ms a figure, a third of an edit's budget; the
    dicts here are fixed in shape, and the tests validate every figure fully
    (``go.Figure(fig.to_dict())``), so the UI skips it.
    """
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def block_bars(analysis: Analysis, stage_names: Sequence[str] = ()) -> go.Figure:
    """Per-unit MACs (top) and parameters (bottom), coloured by block type, hover for details."""
    rows = analysis.blocks
    n = _n_stages(analysis)
    names = [r.name for r in rows]
    colours = [block_colour(r.type) for r in rows]
    hover = [_hover(r) + f"<br>{stage_label(r.stage, n, stage_names)}" for r in rows]
    data = [
        dict(type="bar", x=names, y=[r.macs / 1e6 for r in rows], marker=dict(color=colours), name="MACs (M)",
             hovertext=hover, hoverinfo="text", xaxis="x", yaxis="y", showlegend=False),
        dict(type="bar", x=names, y=[r.params / 1e3 for r in rows], marker=dict(color=colours), name="params (k)",
             hovertext=hover, hoverinfo="text", xaxis="x2", yaxis="y2", showlegend=False),
    ]
    # the legend: what each colour means (one empty trace per block type present, in registry colours)
    # (a zero-height bar each: plotly leaves a trace without points out of the legend; overlaid, they take no room)
    data += [dict(type="bar", x=names[:1], y=[0], name=block_type, marker=dict(color=block_colour(block_type)),
                  xaxis="x", yaxis="y", showlegend=True, hoverinfo="skip")
             for block_type in dict.fromkeys(r.type for r in rows)]
    layout = dict(
        **_base_layout(f"Per block: {analysis.macs / 1e6:,.1f} M MACs, {analysis.params / 1e6:.3f} M params", 420),
        xaxis=dict(domain=[0, 1], anchor="y", showticklabels=False, matches="x2"),
        yaxis=dict(domain=[0.54, 1.0], title=dict(text="MACs (M)"), gridcolor="#eee", rangemode="tozero"),
        xaxis2=dict(domain=[0, 1], anchor="y2", tickangle=-60, tickfont=dict(size=9)),
        yaxis2=dict(domain=[0.0, 0.46], title=dict(text="params (k)"), gridcolor="#eee", rangemode="tozero"),
        bargap=0.15,
        barmode="overlay",
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right",
                    title=dict(text="colour = block type "), font=dict(size=10)),
    )
    layout["margin"] = dict(l=56, r=16, t=64, b=40)
    return _figure(data, layout)


@lru_cache(maxsize=1)
def preset_points() -> tuple[PresetPoint, ...]:
    """Every preset's params and MACs at its own input size (once per process; on disk between processes)."""
    from .analysis_cache import preset_analysis
    from .presets import list_presets

    points = []
    for name in list_presets():
        _spec, a = preset_analysis(name)
        points.append(PresetPoint(name, a.params, a.macs, "×".join(str(d) for d in a.input_shape[2:])))
    return tuple(points)


def preset_scatter(points: Sequence[PresetPoint], current: Analysis, current_label: str = "") -> go.Figure:
    """MACs (G, x) against parameters (M, y): the presets as labelled dots, the design as a star."""
    label = current_label or current.name
    size = "×".join(str(d) for d in current.input_shape[2:])
    data: list[dict[str, Any]] = [
        dict(type="scatter", x=[p.macs / 1e9 for p in points], y=[p.params / 1e6 for p in points],
             mode="markers+text", text=[p.name for p in points], textposition=_label_positions(points, current),
             name="presets", cliponaxis=False,
             marker=dict(size=11, color=PRESET_COLOUR, line=dict(width=1, color="#4a5874")),
             hovertext=[f"<b>{p.name}</b><br>{p.params / 1e6:.3f} M params<br>{p.macs / 1e9:.3f} GMACs"
                        f"<br>input {p.input_size}" for p in points], hoverinfo="text"),
        dict(type="scatter", x=[current.macs / 1e9], y=[current.params / 1e6], mode="markers", name="this design",
             marker=dict(size=18, symbol="star", color=DESIGN_COLOUR, line=dict(width=1, color="#7a1f10")),
             hovertext=[f"<b>{label}</b> (this design)<br>{current.params / 1e6:.3f} M params<br>"
                        f"{current.macs / 1e9:.3f} GMACs<br>input {size}"], hoverinfo="text"),
    ]
    xs = [p.macs / 1e9 for p in points] + [current.macs / 1e9]
    ys = [p.params / 1e6 for p in points] + [current.params / 1e6]
    layout = dict(
        **_base_layout("Among the presets (each at its own input size)", 420),
        xaxis=dict(title=dict(text="GMACs (fvcore)"), gridcolor="#eee", zeroline=False,
                   range=[-0.1 * max(xs), max(xs) * 1.15 + 1e-3]),
        yaxis=dict(title=dict(text="params (M)"), gridcolor="#eee", zeroline=False, range=[0, max(ys) * 1.2 + 1e-3]),
        legend=dict(orientation="h", y=-0.18),
    )
    return _figure(data, layout)


def _label_positions(points: Sequence[PresetPoint], current: Analysis) -> list[str]:
    """Where each preset's name goes so that names do not overlap each other or the design's star.

    A label sits above its dot unless another label (or the star) lies close to that spot (within
    12 % of the x range and 15 % of the y range); then below, then to the right, then to the left,
    whichever is free first (above when none is). A label above or below near the right edge is
    right-aligned, one near the left edge left-aligned, so none is cut off.
    """
    xs = [p.macs / 1e9 for p in points]
    ys = [p.params / 1e6 for p in points]
    all_x, all_y = xs + [current.macs / 1e9], ys + [current.params / 1e6]
    dx = (max(all_x) - min(all_x)) or 1.0
    dy = (max(all_y) - min(all_y)) or 1.0
    taken: list[tuple[float, float]] = [(current.macs / 1e9, current.params / 1e6 + 0.06 * dy)]
    out = []
    for x, y in sorted(zip(xs, ys, strict=True), key=lambda xy: -xy[1]):
        side = "right" if x < min(all_x) + 0.1 * dx else "left" if x > max(all_x) - 0.1 * dx else "center"
        spots = [(f"top {side}", (x, y + 0.06 * dy)), (f"bottom {side}", (x, y - 0.06 * dy)),
                 ("middle right", (x + 0.13 * dx, y)), ("middle left", (x - 0.13 * dx, y))]
        free = [(pos, at) for pos, at in spots
                if not any(abs(at[0] - tx) < 0.12 * dx and abs(at[1] - ty) < 0.15 * dy for tx, ty in taken)]
        where, at = (free or spots)[0]
        taken.append(at)
        out.append((x, y, where))
    lookup = {(x, y): pos for x, y, pos in out}
    return [lookup[(x, y)] for x, y in zip(xs, ys, strict=True)]


def architecture_diagram(
    analysis: Analysis, stage_names: Sequence[str] = (), stage_repeats: Sequence[int] = ()
) -> go.Figure:
    """Stages as shaded bands labelled with their resolution; units as bars of their output width.

    One bar per unit in execution order (repeats unrolled), height = output channels on a log
    axis, colour = block type (``block_colour``); hover shows place, shapes, params and MACs.
    """
    rows = analysis.blocks
    n = _n_stages(analysis)
    types = list(dict.fromkeys(r.type for r in rows))
    data = []
    for block_type in types:
        idx = [i for i, r in enumerate(rows) if r.type == block_type]
        data.append(dict(
            type="bar", x=idx, y=[rows[i].out_shape[1] for i in idx], name=block_type, width=0.8,
            marker=dict(color=block_colour(block_type)),
            hovertext=[_hover(rows[i]) for i in idx], hoverinfo="text",
        ))
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    start = 0
    for i in range(1, len(rows) + 1):
        if i < len(rows) and rows[i].stage == rows[start].stage:
            continue
        stage = rows[start].stage
        first, last = rows[start], rows[i - 1]
        label = stage_label(stage, n, stage_names)
        if stage == n + 1:  # the head: its output is the class scores
            res = f"{_shape(first.in_shape)} → {first.out_shape[-1]}"
        else:
            res = f"{last.out_shape[2]}×{last.out_shape[3]}" if len(last.out_shape) == 4 else _shape(last.out_shape)
        repeat = stage_repeats[stage - 1] if 1 <= stage <= len(stage_repeats) else 1
        text = f"<b>{label}</b><br>{res}" + (f" · ×{repeat}" if repeat > 1 else "")
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=start - 0.5, x1=i - 0.5, y0=0, y1=1,
                           fillcolor="#f3f5f9" if stage % 2 == 0 else "#e6ebf3", line=dict(width=0), layer="below"))
        # the first and last labels hang inwards from their band's outer edge, so that neither is cut off
        edge = (dict(x=start - 0.5, xanchor="left") if start == 0 else
                dict(x=i - 0.5, xanchor="right") if i == len(rows) else dict(x=(start + i - 1) / 2))
        annotations.append(dict(**edge, y=1.0 + 0.13 * (len(annotations) % 2), xref="x", yref="paper",
                                yanchor="bottom", text=text, showarrow=False, font=dict(size=10)))
        start = i
    layout = dict(
        **_base_layout("", 360),
        shapes=shapes,
        annotations=annotations,
        barmode="overlay",
        xaxis=dict(tickmode="array", tickvals=list(range(len(rows))), ticktext=[r.name for r in rows],
                   tickangle=-60, tickfont=dict(size=9), range=[-0.6, len(rows) - 0.4]),
        yaxis=dict(type="log", title=dict(text="output channels"), gridcolor="#dde", dtick=1),
        legend=dict(orientation="h", y=-0.32, title=dict(text="block type ")),
    )
    layout["margin"] = dict(l=56, r=16, t=78, b=40)
    return _figure(data, layout)


# ----------------------------------------------------------------------------- latency


class LatencyPoint(TypedDict):
    """A design on the latency chart: ``kind`` says how its latency was obtained."""

    name: str
    gmacs: float
    ms: float
    kind: str
    design: bool


def latency_figure(points: Sequence[LatencyPoint], title: str) -> go.Figure:
    """Latency (ms, y) against fvcore GMACs (x): presets as labelled dots, the design as a star.

    ``kind`` names how a latency was obtained (e.g. ``measured here``, ``predicted: cortex-a72``);
    one trace per kind and role, one ``PALETTE`` colour per kind.
    """
    fig = go.Figure()
    for k, kind in enumerate(dict.fromkeys(p["kind"] for p in points)):
        for design in (False, True):
            group = [p for p in points if p["kind"] == kind and p["design"] == design]
            if not group:
                continue
            colour = DESIGN_COLOUR if design else PALETTE[k % len(PALETTE)]
            fig.add_trace(go.Scatter(
                x=[p["gmacs"] for p in group], y=[p["ms"] for p in group], text=[p["name"] for p in group],
                mode="markers+text", textposition="top center", name=f"{'your design' if design else 'presets'}"
                f" ({kind})", marker=dict(size=16 if design else 10, symbol="star" if design else "circle",
                                          color=colour),
                hovertemplate="%{text}<br>%{x:.3f} GMACs<br>%{y:.2f} ms<extra>" + html.escape(kind) + "</extra>"))
    fig.update_layout(title=title, xaxis_title="GMACs (fvcore, at each design's input size)",
                      yaxis_title="latency, batch 1 (ms)", font=FONT, height=420, margin=dict(l=60, r=20, t=50, b=50),
                      legend=dict(orientation="h", y=-0.2))
    return fig


def op_time_figure(rows: Sequence[OpRow], title: str = "Where the time goes", top: int = 12) -> go.Figure:
    """ONNX Runtime kernel time per unit (x), stacked by op type: fp32 above, int8 below (one colour per op type).

    ``rows``: ``explorer.latency.op_profile.compare_ops``. The ``top`` op types by total time keep their
    names; the rest are summed as ``other ops``. Op types are ONNX Runtime's after its fusions
    (``QLinearConv`` is an int8 convolution, ``QuantizeLinear``/``DequantizeLinear`` the conversions).
    """
    units = list(dict.fromkeys(r.unit for r in rows))
    totals: dict[str, float] = {}
    for r in rows:
        totals[r.op_type] = totals.get(r.op_type, 0.0) + r.fp32_ms + r.int8_ms
    kept = sorted(totals, key=lambda op: -totals[op])[:top]
    ops = [*kept, "other ops"] if len(totals) > len(kept) else kept
    with_int8 = any(r.int8_ms for r in rows)
    fig = make_subplots(rows=2 if with_int8 else 1, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("fp32", "int8") if with_int8 else ("fp32",))
    for k, op in enumerate(ops):
        for row_i, column in enumerate(("fp32_ms", "int8_ms")[: 2 if with_int8 else 1], 1):
            y = {u: 0.0 for u in units}
            for r in rows:
                if (r.op_type == op) or (op == "other ops" and r.op_type not in kept):
                    y[r.unit] += getattr(r, column)
            fig.add_trace(go.Bar(x=units, y=[y[u] for u in units], name=op, legendgroup=op, showlegend=row_i == 1,
                                 marker_color=PALETTE[k % len(PALETTE)],
                                 hovertemplate="%{x}<br>" + html.escape(op) + ": %{y:.3f} ms<extra></extra>"),
                          row=row_i, col=1)
    total32 = sum(r.fp32_ms for r in rows)
    total8 = sum(r.int8_ms for r in rows)
    subtitle = f"fp32 {total32:.2f} ms" + (f", int8 {total8:.2f} ms ({total32 / total8:.2f}× speed-up)"
                                           if with_int8 and total8 else "")
    fig.update_layout(barmode="stack", title=f"{html.escape(title)}: {subtitle}", font=FONT,
                      height=560 if with_int8 else 360, margin=dict(l=60, r=20, t=60, b=50),
                      legend=dict(orientation="h", y=-0.15), plot_bgcolor="white", paper_bgcolor="white")
    fig.update_yaxes(title_text="kernel ms per inference")
    return fig


# ----------------------------------------------------------------------------- training runs


def _step_layout(fig: go.Figure, title: str, y_title: str) -> go.Figure:
    fig.update_layout(title=title, xaxis_title="step", yaxis_title=y_title, height=320, font=FONT,
                      margin={"l": 50, "r": 10, "t": 40, "b": 40}, showlegend=False)
    return fig


def loss_figure(curve: Sequence[StepRow], title: str = "training loss") -> go.Figure:
    """Mean training loss per logged interval against the step."""
    pts = [p for p in curve if p.train_loss is not None]
    fig = go.Figure(go.Scatter(x=[p.step for p in pts], y=[p.train_loss for p in pts], mode="lines+markers",
                               line={"color": LOSS_COLOUR}, hovertemplate="step %{x}: loss %{y:.4f}<extra></extra>"))
    return _step_layout(fig, title, "cross-entropy (label-smoothed)")


def accuracy_figure(curve: Sequence[StepRow], title: str = "validation accuracy") -> go.Figure:
    """Validation top-1 accuracy (%) against the step."""
    pts = [(p.step, 100 * p.val_accuracy) for p in curve if p.val_accuracy is not None]
    fig = go.Figure(go.Scatter(x=[s for s, _ in pts], y=[a for _, a in pts], mode="lines+markers",
                               line={"color": ACCURACY_COLOUR}, hovertemplate="step %{x}: %{y:.1f} %<extra></extra>"))
    fig.update_yaxes(range=[0, 100])
    return _step_layout(fig, title, "top-1 (%)")


def accuracy_vs_macs(runs: Sequence[RunRow]) -> go.Figure:
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
                      yaxis_title="val accuracy (%)", height=380, font=FONT,
                      margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return fig


def curves_figure(runs: Sequence[RunRow]) -> go.Figure:
    """Loss (left) and validation accuracy (right) against the step, one colour per run."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "validation accuracy (%)"))
    for i, run in enumerate(runs):
        colour = PALETTE[i % len(PALETTE)]
        name = f"#{run.id} {run.design_name}"
        loss = [p for p in run.curve if p.train_loss is not None]
        acc = [(p.step, 100 * p.val_accuracy) for p in run.curve if p.val_accuracy is not None]
        fig.add_trace(go.Scatter(x=[p.step for p in loss], y=[p.train_loss for p in loss], mode="lines",
                                 name=name, legendgroup=name, line={"color": colour}), row=1, col=1)
        fig.add_trace(go.Scatter(x=[s for s, _ in acc], y=[a for _, a in acc], mode="lines+markers",
                                 name=name, legendgroup=name, showlegend=False, line={"color": colour}), row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=360, font=FONT, margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return fig


# ----------------------------------------------------------------------------- search


def front_axes(objectives: Sequence[str]) -> tuple[str, str]:
    """The two objectives a front is drawn on: accuracy (y) against the first cost (x), else the first two."""
    names = list(objectives)
    if "accuracy" in names and len(names) > 1:
        return next(n for n in names if n != "accuracy"), "accuracy"
    return names[0], names[1] if len(names) > 1 else names[0]


def objective_value(name: str, record: Any) -> float | None:
    """An objective in display units (accuracy in %, MACs in G, params in M, peak in MiB, ms) or None."""
    raw = record.get(OBJECTIVES[name].field) if isinstance(record, dict) else getattr(record, OBJECTIVES[name].field)
    if raw is None:
        return None
    return 100.0 * float(raw) if name == "accuracy" else float(raw) / OBJECTIVES[name].scale


def objective_label(name: str) -> str:
    """An objective's axis title with its unit and direction."""
    o = OBJECTIVES[name]
    unit = "%" if name == "accuracy" else o.unit
    arrow = "higher is better" if o.maximise else "lower is better"
    return f"{o.label} ({unit}, {arrow})" if unit else f"{o.label} ({arrow})"


def _candidate_hover(c: ViewCandidate, objectives: Sequence[str]) -> str:
    bits = [f"<b>#{c.index}</b> {html.escape(c.mutation[:80])}"]
    for n in objectives:
        v = objective_value(n, c)
        if v is not None:
            unit = "%" if n == "accuracy" else f" {OBJECTIVES[n].unit}"
            bits.append(f"{OBJECTIVES[n].label}: {v:.3f}{unit}")
    if c.fidelity_steps:
        bits.append(f"accuracy after {c.fidelity_steps} training steps")
    if c.reasons:
        bits.append("rejected: " + html.escape("; ".join(c.reasons)[:160]))
    return "<br>".join(bits)


def search_front_figure(candidates: Sequence[ViewCandidate], front: Sequence[int], objectives: Sequence[str],
                        references: Sequence[tuple[str, dict[str, Any]]] = (), title: str = "") -> go.Figure:
    """A search on its first two objectives (accuracy on y when it is one): every candidate, the front, the presets.

    Rejected candidates are drawn where their costs put them (grey, hollow; no accuracy: at 0 %); kept ones
    green; the front red, joined as a staircase when there are two objectives; the starting design a black
    diamond; ``references`` (preset name, record) grey squares. ``customdata`` is the candidate index.
    """
    x_name, y_name = front_axes(objectives)
    on_front = set(front)

    def xy(rows: Sequence[Any]) -> tuple[list[float | None], list[float | None]]:
        return ([objective_value(x_name, r) for r in rows],
                [(objective_value(y_name, r) if objective_value(y_name, r) is not None
                  else (0.0 if y_name == "accuracy" else None)) for r in rows])

    groups = (
        ("rejected (broke a budget or rule)", [c for c in candidates if not c.feasible],
         dict(size=7, color="rgba(0,0,0,0)", line=dict(width=1.2, color=REJECTED_COLOUR))),
        ("kept", [c for c in candidates if c.feasible and c.index not in on_front and c.kind != "start"],
         dict(size=8, color=KEPT_COLOUR, opacity=0.75)),
    )
    data: list[dict[str, Any]] = []
    for name, rows, marker in groups:
        x, y = xy(rows)
        unplaced = sum(a is None or b is None for a, b in zip(x, y, strict=True))  # rejected before a number
        label = f"{name} ({len(rows)}" + (f", {unplaced} not placed: no {x_name if None in x else y_name})"
                                          if unplaced else ")")
        data.append(dict(type="scatter", x=x, y=y, mode="markers", name=label, marker=marker,
                         customdata=[c.index for c in rows], hovertext=[_candidate_hover(c, objectives) for c in rows],
                         hoverinfo="text"))
    by_index = {c.index: c for c in candidates}
    front_rows = sorted((by_index[i] for i in front if i in by_index),
                        key=lambda c: objective_value(x_name, c) or 0.0)
    x, y = xy(front_rows)
    data.append(dict(type="scatter", x=x, y=y, mode="lines+markers" if len(objectives) == 2 else "markers",
                     name=f"front ({len(front_rows)})", line=dict(color=DESIGN_COLOUR, width=1.5, shape="hv"),
                     marker=dict(size=10, color=DESIGN_COLOUR, line=dict(width=1, color="#7a1f10")),
                     customdata=[c.index for c in front_rows],
                     hovertext=[_candidate_hover(c, objectives) + "<br><i>on the front</i>" for c in front_rows],
                     hoverinfo="text"))
    start = [c for c in candidates if c.kind == "start"]
    if start:
        x, y = xy(start)
        data.append(dict(type="scatter", x=x, y=y, mode="markers", name="start (your design)",
                         marker=dict(size=16, symbol="diamond-open", color="#111827", line=dict(width=2)),
                         customdata=[c.index for c in start],
                         hovertext=[_candidate_hover(c, objectives) + "<br><i>the starting design</i>" for c in start],
                         hoverinfo="text"))
    refs = [(n, r) for n, r in references if objective_value(x_name, r) is not None
            and objective_value(y_name, r) is not None]
    if refs:
        data.append(dict(
            type="scatter", x=[objective_value(x_name, r) for _, r in refs],
            y=[objective_value(y_name, r) for _, r in refs], mode="markers+text", name="presets (reference)",
            text=[n for n, _ in refs], textposition=["top center" if i % 2 == 0 else "bottom center"
                                                     for i in range(len(refs))],
            textfont=dict(size=10, color="#4a5874"), cliponaxis=False,
            marker=dict(size=10, symbol="square", color=PRESET_COLOUR, line=dict(width=1, color="#4a5874")),
            hovertext=[f"<b>{html.escape(n)}</b> (preset)<br>" + "<br>".join(
                f"{OBJECTIVES[o].label}: {v:.3f}" for o in objectives if (v := objective_value(o, r)) is not None)
                for n, r in refs], hoverinfo="text"))
    extra = [n for n in objectives if n not in (x_name, y_name)]
    note = f" ({OBJECTIVES[extra[0]].label} in the hover)" if extra else ""
    layout = dict(
        **_base_layout(title or f"{OBJECTIVES[y_name].label} vs {OBJECTIVES[x_name].label}{note}", 440),
        xaxis=dict(title=dict(text=objective_label(x_name)), gridcolor="#eee", zeroline=False,
                   rangemode="tozero" if refs else "normal"),  # room for the presets' labels
        yaxis=dict(title=dict(text=objective_label(y_name)), gridcolor="#eee", zeroline=False),
        legend=dict(orientation="h", y=-0.2), clickmode="event",
    )
    if not candidates:
        layout["annotations"] = [dict(text="no candidate yet", showarrow=False, xref="paper", yref="paper",
                                      x=0.5, y=0.5, font=dict(size=14, color="#6b7280"))]
    return _figure(data, layout)


def hypervolume_figure(curve: Sequence[float], title: str = "hypervolume of the front") -> go.Figure:
    """The front's hypervolume (share of the search's fixed box it dominates, 0–1) after every evaluation."""
    data = [dict(type="scatter", x=list(range(1, len(curve) + 1)), y=list(curve), mode="lines+markers"
                 if len(curve) < 60 else "lines", name="hypervolume", line=dict(color=ACCURACY_COLOUR, width=2),
                 marker=dict(size=5), hovertemplate="evaluation %{x}: %{y:.4f}<extra></extra>")]
    layout = dict(
        **_base_layout(title, 300),
        xaxis=dict(title=dict(text="evaluation"), gridcolor="#eee", zeroline=False),
        yaxis=dict(title=dict(text="hypervolume (0–1)"), gridcolor="#eee", rangemode="tozero"),
        showlegend=False,
    )
    if not curve:
        layout["annotations"] = [dict(text="no evaluation yet", showarrow=False, xref="paper", yref="paper",
                                      x=0.5, y=0.5, font=dict(size=14, color="#6b7280"))]
    return _figure(data, layout)


# ----------------------------------------------------------------------------- compare

#: the baseline's bars in a comparison (the current design keeps ``DESIGN_COLOUR``)
BASELINE_COLOUR = PRESET_COLOUR


def compare_stages_figure(current: Sequence[StageTotals], baseline: Sequence[StageTotals], current_label: str,
                          baseline_label: str) -> go.Figure:
    """Per stage, the design beside the baseline: params (M), MACs (M) and, when both were predicted,
    latency (ms), one row each; stages are matched by label (``stem``, ``stage 1`` …, ``head``)."""
    labels = list(dict.fromkeys([s.label for s in baseline] + [s.label for s in current]))
    order = {"stem": -1, "head": 10_000}
    labels.sort(key=lambda x: order.get(x, int(x.split()[-1]) if x.startswith("stage ") else 0))
    cur = {s.label: s for s in current}
    base = {s.label: s for s in baseline}
    rows: list[tuple[str, str, Any]] = [("params (M)", "params", 1e6), ("MACs (M)", "macs", 1e6)]
    with_latency = all(s.latency_ms is not None for s in [*current, *baseline]) and bool(current)
    if with_latency:
        rows.append(("latency (ms)", "latency_ms", 1.0))
    n = len(rows)
    gap = 0.08
    height = (1 - gap * (n - 1)) / n
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = dict(**_base_layout(f"Per stage: {current_label} against {baseline_label}",
                                                 150 + 150 * n), barmode="group", bargap=0.25)
    for i, (title, field, scale) in enumerate(rows):
        axis = "" if i == 0 else str(i + 1)
        top = 1 - i * (height + gap)
        for who, values, colour, label in (("baseline", base, BASELINE_COLOUR, baseline_label),
                                           ("design", cur, DESIGN_COLOUR, current_label)):
            ys = [(getattr(values[x], field) or 0) / scale if x in values else 0 for x in labels]
            data.append(dict(type="bar", x=labels, y=ys, name=f"{who}: {label}", marker=dict(color=colour),
                             xaxis=f"x{axis}", yaxis=f"y{axis}", showlegend=i == 0, legendgroup=who,
                             hovertemplate=f"{label}<br>%{{x}}: %{{y:.3f}} {title.split()[-1].strip('()')}"
                                           "<extra></extra>"))
        layout[f"xaxis{axis}"] = dict(domain=[0, 1], anchor=f"y{axis}", showticklabels=i == n - 1,
                                      matches="x" if i else None, tickfont=dict(size=10))
        layout[f"yaxis{axis}"] = dict(domain=[max(0.0, top - height), top], title=dict(text=title),
                                      gridcolor="#eee", rangemode="tozero")
    layout["legend"] = dict(orientation="h", y=1.0, yanchor="bottom", x=0, font=dict(size=10))
    layout["margin"] = dict(l=64, r=16, t=70, b=40)
    return _figure(data, layout)

