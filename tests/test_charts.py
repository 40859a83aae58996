"""Plotly figures drawn from an Analysis: valid plotly, and showing the analysis' own numbers."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from blocks import list_blocks
from explorer.analysis import Analysis, analyze
from explorer.charts import architecture_diagram, block_bars, block_colour, preset_points, preset_scatter, stage_label
from explorer.design import load_preset
from explorer.presets import list_presets
from explorer.spec import ArchitectureSpec


@pytest.fixture(scope="module")
def small() -> tuple[ArchitectureSpec, Analysis]:
    spec = load_preset("mobilenetv3_small")
    return spec, analyze(spec)


def _validated(fig: go.Figure) -> go.Figure:
    """Full plotly validation of a figure the UI builds without it (raises on any bad property)."""
    return go.Figure(fig.to_dict())


def test_block_bars_show_every_unit(small: tuple[ArchitectureSpec, Analysis]) -> None:
    spec, a = small
    fig = _validated(block_bars(a, [s.name for s in spec.stages]))
    macs, params, *legend = fig.data
    assert list(macs.x) == [r.name for r in a.blocks]
    # the legend says what the colours mean: one entry per block type present, in its colour
    assert [t.name for t in legend] == list(dict.fromkeys(r.type for r in a.blocks))
    assert all(t.marker.color == block_colour(t.name) and t.showlegend for t in legend)
    assert sum(macs.y) == pytest.approx(a.macs / 1e6)
    assert sum(params.y) == pytest.approx(a.params / 1e3)
    assert "stage 2 · s2-28" in macs.hovertext[2]  # hover names the stage


def test_architecture_diagram_bands_and_bars(small: tuple[ArchitectureSpec, Analysis]) -> None:
    spec, a = small
    fig = _validated(architecture_diagram(a, [s.name for s in spec.stages], [s.repeat for s in spec.stages]))
    bars = {t.name: t for t in fig.data}
    assert set(bars) == {r.type for r in a.blocks}
    heights = {x: y for t in fig.data for x, y in zip(t.x, t.y, strict=True)}
    assert [heights[i] for i in range(len(a.blocks))] == [r.out_shape[1] for r in a.blocks]
    # one band per stage plus stem and head; labels carry resolution and repeats
    assert len(fig.layout.shapes) == len(spec.stages) + 2
    texts = [ann.text for ann in fig.layout.annotations]
    assert texts[0].startswith("<b>stem</b><br>112×112")
    assert any("stage 5 · s5-7" in t and "7×7 · ×3" in t for t in texts)
    assert texts[-1].startswith("<b>head</b>")
    assert fig.layout.yaxis.type == "log"


def test_preset_points_and_scatter(small: tuple[ArchitectureSpec, Analysis]) -> None:
    _spec, a = small
    points = preset_points()
    assert [p.name for p in points] == list_presets()
    assert preset_points() is points  # computed once
    by_name = {p.name: p for p in points}
    assert by_name["mobilenetv3_small"].params == a.params and by_name["mobilenetv3_small"].macs == a.macs
    fig = _validated(preset_scatter(points, a))
    presets, current = fig.data
    assert list(presets.text) == list_presets()
    assert current.x[0] == pytest.approx(a.macs / 1e9) and current.y[0] == pytest.approx(a.params / 1e6)
    assert current.marker.symbol == "star"


def test_stage_label() -> None:
    assert stage_label(0, 3) == "stem" and stage_label(4, 3) == "head"
    assert stage_label(2, 3, ["a", "b", "c"]) == "stage 2 · b" and stage_label(2, 3) == "stage 2"


def test_a_block_type_has_one_colour_in_every_chart(small: tuple[ArchitectureSpec, Analysis]) -> None:
    spec, a = small
    bars = block_bars(a)
    diagram = architecture_diagram(a)
    for macs_or_params in bars.data[:2]:
        assert list(macs_or_params.marker.color) == [block_colour(r.type) for r in a.blocks]
    assert all(t.marker.color == block_colour(t.name) for t in diagram.data)
    # fixed across designs, not by order of appearance: another preset's diagram agrees
    other = architecture_diagram(analyze(load_preset("attendnext")))
    colours = {t.name: t.marker.color for t in diagram.data}
    shared = [t for t in other.data if t.name in colours]
    assert shared and all(t.marker.color == colours[t.name] for t in shared)
    # every registered block type has a colour of its own
    names = [e.name for e in list_blocks()]
    assert len({block_colour(n) for n in names}) == len(names)


def test_labels_are_placed_to_be_read() -> None:
    a = analyze(load_preset("attendnext"))
    diagram = architecture_diagram(a)
    first, last = diagram.layout.annotations[0], diagram.layout.annotations[-1]
    assert first.xanchor == "left" and first.x == -0.5  # the stem's label starts at the plot's left edge
    assert last.xanchor == "right" and last.x == len(a.blocks) - 0.5  # the head's ends at its right edge
    scatter = preset_scatter(preset_points(), a)
    positions = list(scatter.data[0].textposition)
    assert len(positions) == len(list_presets())
    # two presets close together (within 12 % of the x range) never both put their names above
    xs, ys = list(scatter.data[0].x), list(scatter.data[0].y)
    span_x, span_y = max(xs) - min(xs), max(ys) - min(ys)
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            if abs(xs[i] - xs[j]) < 0.12 * span_x and abs(ys[i] - ys[j]) < 0.1 * span_y:
                assert positions[i].split()[0] != positions[j].split()[0]
