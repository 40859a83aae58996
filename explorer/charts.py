"""Every plotly figure of the explorer, in one place and one palette.

Design figures, drawn from an ``Analysis`` (no counting happens here):

- ``block_bars``: per-unit MACs and parameters, two bar rows sharing the unit axis;
- ``preset_scatter``: the design among the presets, MACs (x) against parameters (y);
- ``architecture_diagram``: stages as bands (resolution, repeats) and units as bars whose
  height is the output width (log scale); details on hover.

Figures of the other tabs: ``latency_figure`` (latency against MACs), ``loss_figure`` and
``accuracy_figure`` (a training run's curves), ``accuracy_vs_macs`` and ``curves_figure`` (stored
runs), ``search_chart`` (every design a search evaluated).

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
from .search import SearchResult
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
    "curves_figure",
    "latency_figure",
    "loss_figure",
    "preset_points",
    "preset_scatter",
    "search_chart",
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
    layout = dict(
        **_base_layout(f"Per block: {analysis.macs / 1e6:,.1f} M MACs, {analysis.params / 1e6:.3f} M params", 420),
        xaxis=dict(domain=[0, 1], anchor="y", showticklabels=False, matches="x2"),
        yaxis=dict(domain=[0.54, 1.0], title=dict(text="MACs (M)"), gridcolor="#eee", rangemode="tozero"),
        xaxis2=dict(domain=[0, 1], anchor="y2", tickangle=-60, tickfont=dict(size=9)),
        yaxis2=dict(domain=[0.0, 0.46], title=dict(text="params (k)"), gridcolor="#eee", rangemode="tozero"),
        bargap=0.15,
    )
    return _figure(data, layout)


@lru_cache(maxsize=1)
def preset_points() -> tuple[PresetPoint, ...]:
    """Every preset's params and MACs at its own input size (analysed once per process)."""
    from .analysis import analyze
    from .design import load_preset
    from .presets import list_presets

    points = []
    for name in list_presets():
        a = analyze(load_preset(name))
        points.append(PresetPoint(name, a.params, a.macs, "×".join(str(d) for d in a.input_shape[2:])))
    return tuple(points)


def preset_scatter(points: Sequence[PresetPoint], current: Analysis, current_label: str = "") -> go.Figure:
    """MACs (G, x) against parameters (M, y): the presets as labelled dots, the design as a star."""
    label = current_label or current.name
    size = "×".join(str(d) for d in current.input_shape[2:])
    data = [
        dict(type="scatter", x=[p.macs / 1e9 for p in points], y=[p.params / 1e6 for p in points],
             mode="markers+text", text=[p.name for p in points], textposition="top center", name="presets",
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
        annotations.append(dict(x=(start + i - 1) / 2, y=1.0 + 0.13 * (len(annotations) % 2), xref="x",
                                yref="paper", yanchor="bottom", text=text, showarrow=False, font=dict(size=10)))
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


def search_chart(result: SearchResult) -> go.Figure:
    """Every evaluated design, MACs vs params; kept ones green, rejected grey, the best a star."""
    fig = go.Figure()
    for feasible, colour, label in ((True, KEPT_COLOUR, "kept (meets the constraints)"),
                                    (False, REJECTED_COLOUR, "rejected")):
        rows = [c for c in result.history if c.feasible == feasible]
        fig.add_trace(go.Scatter(
            x=[c.macs / 1e9 for c in rows], y=[c.params / 1e6 for c in rows], mode="markers", name=label,
            marker={"color": colour, "size": 8},
            text=[f"step {c.step}: {c.mutation}" + (f"<br>{'; '.join(c.reasons)}" if c.reasons else "") for c in rows],
            hovertemplate="%{text}<br>%{x:.3f} GMACs, %{y:.3f} M params<extra></extra>"))
    b = result.best
    fig.add_trace(go.Scatter(x=[b.macs / 1e9], y=[b.params / 1e6], mode="markers", name="best",
                             marker={"symbol": "star", "size": 18, "color": DESIGN_COLOUR},
                             hovertemplate=f"best (step {b.step}: {b.mutation})<extra></extra>"))
    fig.update_layout(xaxis_title="GMACs", yaxis_title="params (M)", height=420, font=FONT,
                      margin={"l": 50, "r": 10, "t": 30, "b": 40}, legend={"orientation": "h", "y": 1.08})
    return fig
