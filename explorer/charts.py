"""Plotly figures of a design, drawn from its ``Analysis`` rows (no counting happens here).

- ``block_bars``: per-unit MACs and parameters, two bar rows sharing the unit axis;
- ``preset_scatter``: the design among the presets, MACs (x) against parameters (y);
- ``architecture_diagram``: stages as bands (resolution, repeats) and units as bars whose
  height is the output width (log scale), coloured by block type; details on hover.

``preset_points`` analyses every preset once per process (cached): the scatter's background.
Figures are plain ``plotly.graph_objects.Figure`` objects, so the UI shows them in ``gr.Plot``
and the tests read their data directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

import plotly.graph_objects as go

from .analysis import Analysis, BlockRow

__all__ = [
    "PresetPoint",
    "architecture_diagram",
    "block_bars",
    "preset_points",
    "preset_scatter",
    "stage_label",
]

#: one colour per stage band / block type, cycled (plotly's qualitative "Plotly" palette)
PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880",
           "#FF97FF", "#FECB52")
FONT = dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=12)


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
    return max((r.stage for r in analysis.blocks if r.name != "head"), default=0)


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
    """Per-unit MACs (top) and parameters (bottom), coloured by stage, hover for details."""
    rows = analysis.blocks
    n = _n_stages(analysis)
    names = [r.name for r in rows]
    colours = [PALETTE[r.stage % len(PALETTE)] for r in rows]
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
    from .presets import list_presets, load_preset

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
             marker=dict(size=11, color="#8c9bb5", line=dict(width=1, color="#4a5874")),
             hovertext=[f"<b>{p.name}</b><br>{p.params / 1e6:.3f} M params<br>{p.macs / 1e9:.3f} GMACs"
                        f"<br>input {p.input_size}" for p in points], hoverinfo="text"),
        dict(type="scatter", x=[current.macs / 1e9], y=[current.params / 1e6], mode="markers", name="this design",
             marker=dict(size=18, symbol="star", color="#EF553B", line=dict(width=1, color="#7a1f10")),
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


def architecture_diagram(analysis: Analysis, stage_names: Sequence[str] = (), stage_repeats: Sequence[int] = ()) -> go.Figure:
    """Stages as shaded bands labelled with their resolution; units as bars of their output width.

    One bar per unit in execution order (repeats unrolled), height = output channels on a log
    axis, colour = block type; hover shows place, shapes, params and MACs.
    """
    rows = analysis.blocks
    n = _n_stages(analysis)
    types = list(dict.fromkeys(r.type for r in rows))
    data = []
    for t, block_type in enumerate(types):
        idx = [i for i, r in enumerate(rows) if r.type == block_type]
        data.append(dict(
            type="bar", x=idx, y=[rows[i].out_shape[1] for i in idx], name=block_type, width=0.8,
            marker=dict(color=PALETTE[t % len(PALETTE)]),
            hovertext=[_hover(rows[i]) for i in idx], hoverinfo="text",
        ))
    shapes, annotations = [], []
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
