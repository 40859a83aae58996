"""The design graph: every unit a node, the data flow as edges, and each block's inside with true shapes."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from explorer.analysis import analyze
from explorer.build import build_unit
from explorer.charts import block_colour
from explorer.design import load_design, load_preset
from explorer.graph import block_inside, design_graph, shape_text
from explorer.presets import list_presets
from explorer.spec import BlockSpec, expand_units


def _spec(stages: list[dict[str, Any]], stem: list[dict[str, Any]] | None = None, size: int = 32) -> Any:
    return load_design({"name": "g", "input": {"channels": 3, "size": size}, "num_classes": 10,
                        "stem": stem if stem is not None else [{"type": "conv", "out": 16, "stride": 2}],
                        "stages": stages, "head": {"type": "classifier"}})


@pytest.mark.parametrize("name", list_presets())
def test_every_unit_is_a_node_with_its_colour_and_counts(name: str) -> None:
    spec = load_preset(name)
    a = analyze(spec)
    g = design_graph(spec, a, selected="1:1")
    units = [n for n in g.nodes if n.kind == "unit"]
    assert len(units) == len(expand_units(spec))  # the presets hold no parallel group
    for node, row in zip(units, a.blocks, strict=True):
        assert node.colour == block_colour(row.type)
        assert (node.params, node.macs, node.out_shape) == (row.params, row.macs, tuple(row.out_shape))
        assert shape_text(row.out_shape) in node.label
        assert node.inside is not None and node.inside.edges
    ids = {n.id for n in g.nodes}
    assert all(e.source in ids and e.target in ids for e in g.edges)
    # one connected chain from the input to the head: every node but the head feeds something
    sources = {e.source for e in g.edges}
    assert {n.id for n in g.nodes} - sources == {units[-1].id}
    assert [grp.id for grp in g.groups][-1] == "head"
    d = g.to_dict()
    assert d["selected"] == "1:1" and len(d["nodes"]) == len(g.nodes)


def test_attendnext_groups_carry_their_resolution() -> None:
    spec = load_preset("attendnext")
    g = design_graph(spec, analyze(spec))
    res = {grp.id: grp.resolution for grp in g.groups}
    assert res == {"stem": "112×112", "stage-1": "112×112", "stage-2": "56×56", "stage-3": "28×28",
                   "stage-4": "14×14", "stage-5": "7×7", "head": "1000 classes"}
    assert "dcac-56" in next(grp.label for grp in g.groups if grp.id == "stage-2")


def test_a_residual_block_gets_a_skip_edge_into_an_add_node() -> None:
    spec = _spec([{"blocks": [{"type": "dwsep", "out": 16}, {"type": "dwsep", "out": 32}]}])
    g = design_graph(spec, analyze(spec))
    adds = [n for n in g.nodes if n.kind == "add"]
    assert len(adds) == 1  # the first dwsep keeps its width (residual); the second widens (none)
    into_add = [e for e in g.edges if e.target == adds[0].id]
    assert sorted(e.kind for e in into_add) == ["data", "residual"]
    skip = next(e for e in into_add if e.kind == "residual")
    assert g.node(skip.source).label.startswith("stem.b1")  # the skip starts at the block's input


def test_a_parallel_group_forks_into_columns_and_merges() -> None:
    spec = _spec([{"blocks": [{"type": "parallel", "merge": "concat", "branches": [
        [{"type": "conv", "out": 8}], [{"type": "dwsep", "out": 8}, {"type": "conv", "out": 8, "kernel": 1}]]}]}])
    a = analyze(spec)
    g = design_graph(spec, a)
    split = next(n for n in g.nodes if n.kind == "split")
    merge = next(n for n in g.nodes if n.type == "parallel")
    assert len([e for e in g.edges if e.source == split.id]) == 2
    assert len([e for e in g.edges if e.target == merge.id]) == 2
    assert merge.out_shape == tuple(a.blocks[1].out_shape) == (1, 16, 16, 16)  # concat of 8 + 8
    column = [n for n in g.nodes if n.id.startswith(merge.id.replace("-merge", "-c2"))]
    assert [n.type for n in column] == ["dwsep", "conv"] and all(n.key == "1:1" for n in column)


def _module_shapes(block: BlockSpec, in_shape: tuple[int, ...]) -> list[str]:
    """Output shapes of every leaf module of the real block, run on zeros."""
    torch.manual_seed(0)
    module = build_unit(block, in_shape[1]).eval()
    seen: list[str] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: seen.append(shape_text(o.shape)))
             for m in module.modules() if not list(m.children())]
    with torch.no_grad():
        module(torch.zeros(in_shape))
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize(("steps", "source", "size"), [(2, "embedding", 56), (2, "expansion", 15), (1, "embedding", 9)])
def test_the_condenser_inside_follows_the_equation_with_true_shapes(steps: int, source: str, size: int) -> None:
    block = BlockSpec(type="attention_condenser", condense_steps=steps, second_condense=source, embed_ratio=0.5,
                      embed_kernel=3, embed_groups=0, fusion="multiply", embed_act="relu", post_bn=True)
    inside = block_inside(block, (1, 32, size, size))
    labels = [label.split(":")[0] for _, label, _ in inside.nodes]
    expected = [f"V 32×{size}×{size}", "condense", "embed"]
    if steps == 2:
        expected += (["expand 1×1 → 32"] if source == "expansion" else []) + ["condense", "embed"]
    expected += ["expand", f"upsample ×{2 ** steps} (nearest) to {size}×{size}", "gate",
                 "V ⊙ σ(A) · S (learned scale S)", "BatchNorm", f"output 32×{size}×{size}"]
    assert labels == expected
    real = set(_module_shapes(block, (1, 32, size, size)))
    carried = {label for _, _, label in inside.edges}
    assert carried <= real | {f"32×{size}×{size}"}, carried - real  # every shape on an edge really occurs


#: views that no leaf module outputs: BlurPool's reflect padding, MobileViT's token sequences and its concat
VIEWS = {"blurpool": {"16×17×17"}, "mobilevit": {"4×64×32", "32×15×15"}}


@pytest.mark.parametrize("params", [
    {"type": "ir", "out": 24, "kernel": 5, "stride": 2, "expand": 4.0, "se": 0.25, "anti_alias": True},
    {"type": "ir", "out": 16, "kernel": 3, "stride": 1, "expand": 3.0},
    {"type": "dwsep", "out": 24, "kernel": 3, "stride": 2, "se": 0.25},
    {"type": "conv", "out": 24, "kernel": 3, "stride": 2, "anti_alias": True},
    {"type": "mobileone", "out": 24, "kernel": 3, "stride": 2, "branches": 2},
    {"type": "mobilevit", "out": 16, "dim": 32, "depth": 1, "heads": 2, "patch": 2},
    {"type": "blurpool"},
    {"type": "se"},
], ids=lambda p: p["type"])
def test_every_inside_edge_carries_a_shape_the_real_block_produces(params: dict[str, Any]) -> None:
    in_shape = (1, 16, 15, 15)
    spec = load_design({"name": "x", "input": {"size": 15, "channels": 16}, "stages": [{"blocks": [params]}]})
    block = spec.stages[0].blocks[0]  # validated: every default filled in
    inside = block_inside(block, in_shape)
    real = set(_module_shapes(block, in_shape)) | {shape_text(in_shape)}
    spatial = {label for _, _, label in inside.edges if label.count("×") == 2}
    assert spatial - real <= VIEWS.get(block.type, set()), spatial - real
    with torch.no_grad():
        out = build_unit(block, in_shape[1]).eval()(torch.zeros(in_shape))
    assert inside.nodes[-1][1] == f"output {shape_text(out.shape)}"


def test_the_head_inside_ends_at_the_classes() -> None:
    inside = block_inside(BlockSpec(type="classifier", hidden=64, act="hswish", dropout=0.1, pool="avg"),
                          (1, 32, 7, 7), num_classes=10)
    assert [lab for _, _, lab in inside.edges][-3:] == ["64", "64", "10"]


def test_a_graph_of_another_design_is_refused() -> None:
    spec = load_preset("attendnext")
    with pytest.raises(ValueError, match="not of this design"):
        design_graph(spec, analyze(_spec([{"blocks": [{"type": "dwsep", "out": 16}]}])))
