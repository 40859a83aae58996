"""The design as a node-link graph, as plain data: what the Design tab's graph view draws.

``design_graph(spec, analysis)`` turns a counted design into nodes, edges and groups:

- every unit of ``expand_units(spec)`` (stage repeats unrolled) is a node with its block type,
  its colour (``charts.block_colour``: one colour per block type in every view), a shape by the
  block's category, its output tensor shape, params and MACs (the analysis's own numbers);
- edges carry the data flow: unit to unit, a residual block's input around it to an ``add``
  node (``dwsep`` and ``ir`` with ``residual: true``, stride 1 and equal widths:
  ``y = f(x) + x``), and a parallel group's columns from a ``split`` node to a merge node
  (``add`` or ``concat``), each column's blocks as nodes of their own;
- stages are groups (``stem``, ``stage 1 …``, ``head``) labelled with their output resolution;
- every unit node carries its *inside* (``block_inside``): the block's main operations with the
  tensor shape on every edge. The attention condenser's inside is its equation::

      V ─ condense (max-pool 2×2) ─ embed (k×k grouped, 1×1) ─ [condense ─ embed] ─ expand (1×1)
        ─ upsample to H×W ─ σ gate ─ V ⊙ σ(A) · S  (or V · S + A) ─ [BN]

Widths inside a block (an expansion, an embedding, a squeeze) are read from the block module
itself, built on PyTorch's ``meta`` device (no memory, no weights), so they cannot drift from
the code; spatial sizes follow ``ceil(H / stride)`` (odd kernels, ``k // 2`` padding, ceil-mode
pooling), checked against the real modules' shapes in ``tests/test_graph.py``.

Everything here is plain data (``DesignGraph.to_dict()`` is JSON for the browser's Cytoscape.js);
nothing here knows about the UI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch

from blocks import get_block

from .analysis import Analysis, BlockRow, count_unit
from .build import build_unit
from .charts import PARALLEL_COLOUR, block_colour
from .edit import BlockRef
from .spec import ArchitectureSpec, BlockSpec, ParallelSpec, Unit, expand_units

__all__ = [
    "CATEGORY_SHAPES",
    "DesignGraph",
    "GraphEdge",
    "GraphGroup",
    "GraphNode",
    "Inside",
    "block_inside",
    "design_graph",
    "meta_block",
    "shape_text",
]

#: node shape (a Cytoscape.js shape name) by the block's registry category
CATEGORY_SHAPES = {
    "conv": "round-rectangle",
    "attention": "hexagon",
    "transformer": "octagon",
    "downsample": "barrel",
    "head": "round-tag",
    "parallel": "round-diamond",
}
#: colour of the small data-flow nodes (input, add, split, merge)
FLOW_COLOUR = "#9ca3af"


def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    """``(1, 24, 112, 112)`` -> ``24×112×112`` (the batch dimension dropped)."""
    return "×".join(str(d) for d in tuple(shape)[1:])


@dataclass(frozen=True)
class GraphNode:
    """One node. ``kind``: ``unit`` (a block or a parallel group's column block), ``input``,
    ``add`` (a residual sum), ``split`` / ``merge`` (a parallel group's fork and join).

    ``key`` is the editor's address of the written block a node comes from (``BlockRef.key``:
    ``"2:3"``, ``"0:1"``, ``"head"``); clicking the node selects that block. ``None`` for flow nodes.
    """

    id: str
    kind: str
    label: str
    type: str
    colour: str
    shape: str
    group: str
    key: str | None = None
    place: str = ""
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()
    params: int = 0
    macs: int = 0
    inside: Inside | None = None


@dataclass(frozen=True)
class GraphEdge:
    """Data flowing from ``source`` to ``target``. ``kind``: ``data``, ``residual`` (the skip of a
    residual block), ``branch`` (into a parallel column) or ``merge`` (out of one); ``label`` is the
    tensor shape it carries (``C×H×W``)."""

    source: str
    target: str
    kind: str = "data"
    label: str = ""


@dataclass(frozen=True)
class GraphGroup:
    """A stage (or the stem, the head): its id, label and the resolution its units end at."""

    id: str
    label: str
    resolution: str
    stage: int


@dataclass(frozen=True)
class Inside:
    """A block's main operations: ``nodes`` (id, label, op) and ``edges`` (source, target, shape)."""

    title: str
    nodes: tuple[tuple[str, str, str], ...]
    edges: tuple[tuple[str, str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "nodes": [{"id": i, "label": label, "op": op} for i, label, op in self.nodes],
            "edges": [{"source": s, "target": t, "label": lab} for s, t, lab in self.edges],
        }


@dataclass
class DesignGraph:
    """The whole graph: nodes in execution order, edges, groups in order, the selected block key."""

    name: str
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)
    groups: list[GraphGroup] = field(default_factory=list)
    selected: str | None = None

    def node(self, node_id: str) -> GraphNode:
        return next(n for n in self.nodes if n.id == node_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{name, selected, groups, nodes, edges}`` (the browser view's input)."""
        nodes = [{
            "id": n.id, "kind": n.kind, "label": n.label, "type": n.type, "colour": n.colour, "shape": n.shape,
            "group": n.group, "key": n.key, "place": n.place, "in_shape": list(n.in_shape),
            "out_shape": list(n.out_shape), "params": n.params, "macs": n.macs,
            "inside": n.inside.to_dict() if n.inside else None,
        } for n in self.nodes]
        return {
            "name": self.name,
            "selected": self.selected,
            "groups": [{"id": g.id, "label": g.label, "resolution": g.resolution, "stage": g.stage}
                       for g in self.groups],
            "nodes": nodes,
            "edges": [{"source": e.source, "target": e.target, "kind": e.kind, "label": e.label} for e in self.edges],
        }


# ----------------------------------------------------------------------------- insides


def _down(size: int, stride: int) -> int:
    """Spatial size after a stride-``stride`` op with ``k // 2`` padding (odd k) or ceil-mode pooling."""
    return -(-size // stride)


def _s(c: int, h: int, w: int) -> str:
    return f"{c}×{h}×{w}"


@lru_cache(maxsize=1024)
def _meta_module(config_json: str, in_channels: int) -> torch.nn.Module:
    config = BlockSpec.model_validate_json(config_json)
    with torch.device("meta"):
        return build_unit(config, in_channels)


def meta_block(block: BlockSpec, in_channels: int) -> torch.nn.Module:
    """The block built on the meta device (no memory, cached): read its widths, never run it."""
    return _meta_module(block.model_dump_json(), in_channels)


def _chain(title: str, start: str, steps: list[tuple[str, str, str]]) -> Inside:
    """A straight chain: ``steps`` are (label, op, shape after it); ``start`` is the input shape."""
    nodes = [("in", f"input {start}", "io")]
    edges = []
    prev = "in"
    shape = start
    for i, (label, op, after) in enumerate(steps, 1):
        nid = f"op{i}"
        nodes.append((nid, label, op))
        edges.append((prev, nid, shape))
        prev, shape = nid, after
    nodes.append(("out", f"output {shape}", "io"))
    edges.append((prev, "out", shape))
    return Inside(title, tuple(nodes), tuple(edges))


def _with_residual(inside: Inside, start: str) -> Inside:
    """``inside`` with ``y = f(x) + x``: the last op feeds an add node that the input also feeds."""
    nodes = list(inside.nodes)
    edges = list(inside.edges)
    last_edge = edges.pop()  # (last op, out, shape)
    nodes.insert(len(nodes) - 1, ("add", "+ (residual)", "add"))
    edges += [(last_edge[0], "add", last_edge[2]), ("in", "add", start), ("add", "out", last_edge[2])]
    return Inside(inside.title, tuple(nodes), tuple(edges))


def _conv_steps(c_out: int, h: int, w: int, kernel: int, stride: int, groups: str, act: str, anti_alias: bool,
                name: str = "conv") -> tuple[list[tuple[str, str, str]], int, int]:
    if anti_alias and stride > 1:
        h2, w2 = _down(h, stride), _down(w, stride)
        steps = [(f"{name} {kernel}×{kernel}{groups} → BN → {act}", "conv", _s(c_out, h, w)),
                 (f"blurpool s{stride}", "downsample", _s(c_out, h2, w2))]
        return steps, h2, w2
    h2, w2 = _down(h, stride), _down(w, stride)
    s_txt = f" s{stride}" if stride > 1 else ""
    return [(f"{name} {kernel}×{kernel}{groups}{s_txt} → BN → {act}", "conv", _s(c_out, h2, w2))], h2, w2


def _se_steps(c: int, reduced: int, h: int, w: int, gate: str) -> list[tuple[str, str, str]]:
    return [(f"squeeze-excite: pool → 1×1 {reduced} → 1×1 {c} → {gate} → ×", "attention", _s(c, h, w))]


def _condenser(module: Any, c: int, h: int, w: int, p: dict[str, Any]) -> Inside:
    ce = int(module.embed_channels)
    k = p.get("embed_kernel", 3)
    act = p.get("embed_act", "relu")
    h1, w1 = _down(h, 2), _down(w, 2)
    v = _s(c, h, w)
    nodes = [("in", f"V {v}", "io"), ("condense1", "condense: max-pool 2×2", "downsample"),
             ("embed1", f"embed: {k}×{k} grouped → {act} → 1×1 → {act}", "conv")]
    edges = [("in", "condense1", v), ("condense1", "embed1", _s(c, h1, w1))]
    last, shape = "embed1", _s(ce, h1, w1)
    up = 2
    if p.get("condense_steps", 2) == 2:
        h2, w2 = _down(h1, 2), _down(w1, 2)
        if p.get("second_condense", "embedding") == "expansion":
            nodes.append(("expand1", f"expand 1×1 → {c}", "conv"))
            edges.append((last, "expand1", shape))
            last, shape = "expand1", _s(c, h1, w1)
            condensed = _s(c, h2, w2)
        else:
            condensed = _s(ce, h2, w2)
        nodes += [("condense2", "condense: max-pool 2×2", "downsample"),
                  ("embed2", f"embed: {k}×{k} grouped → {act} → 1×1 → {act}", "conv")]
        edges += [(last, "condense2", shape), ("condense2", "embed2", condensed)]
        last, shape = "embed2", _s(ce, h2, w2)
        hs, ws = h2, w2
        up = 4
    else:
        hs, ws = h1, w1
    nodes += [("expand", f"expand: 1×1 → {c}", "conv"), ("upsample", f"upsample ×{up} (nearest) to {h}×{w}", "flow")]
    edges += [(last, "expand", shape), ("expand", "upsample", _s(c, hs, ws))]
    if p.get("fusion", "multiply") == "multiply":
        nodes += [("gate", "gate: σ(A)", "attention"), ("fuse", "V ⊙ σ(A) · S (learned scale S)", "add")]
        edges += [("upsample", "gate", v), ("gate", "fuse", v), ("in", "fuse", v)]
    else:
        nodes += [("fuse", "V · S + A (learned scale S)", "add")]
        edges += [("upsample", "fuse", v), ("in", "fuse", v)]
    last = "fuse"
    if p.get("post_bn", False):
        nodes.append(("bn", "BatchNorm", "conv"))
        edges.append(("fuse", "bn", v))
        last = "bn"
    nodes.append(("out", f"output {v}", "io"))
    edges.append((last, "out", v))
    steps = p.get("condense_steps", 2)
    title = (f"attention condenser ({'double-condensing, DC-AC' if steps == 2 else 'one condensing step'}): "
             f"embedding C_e = {ce} of C = {c}")
    return Inside(title, tuple(nodes), tuple(edges))


def block_inside(block: BlockSpec, in_shape: tuple[int, ...], num_classes: int = 1000) -> Inside:
    """A block's main operations with the tensor shape (C×H×W) on every edge, at ``in_shape`` (N×C×H×W)."""
    p = block.params
    c, h, w = in_shape[1], in_shape[2], in_shape[3]
    start = _s(c, h, w)
    t = block.type
    if t == "classifier":
        hidden = p.get("hidden", 0)
        steps = [(f"global {p.get('pool', 'avg')} pool", "flow", f"{c}×1×1"), ("flatten", "flow", f"{c}")]
        feats = c
        if hidden:
            steps.append((f"linear {c} → {hidden} → {p.get('act', 'hswish')}", "linear", f"{hidden}"))
            feats = hidden
        steps += [(f"dropout {p.get('dropout', 0.2)}", "flow", f"{feats}"),
                  (f"linear {feats} → {num_classes}", "linear", f"{num_classes}")]
        return _chain("classifier head", start, steps)
    module: Any = meta_block(block, c)  # read its widths (mid_channels, se.reduce, embed_channels)
    if t == "attention_condenser":
        return _condenser(module, c, h, w, p)
    if t == "blurpool":
        s = p.get("stride", 2)
        f = p.get("filter_size", 3)
        return _chain("anti-aliased downsampling (BlurPool)", start, [
            (f"reflect-pad {f // 2}", "flow", _s(c, h + 2 * (f // 2), w + 2 * (f // 2))),
            (f"binomial blur {f}×{f} (depthwise, fixed), subsample s{s}", "downsample",
             _s(c, _down(h, s), _down(w, s)))])
    if t == "se":
        reduced = int(module.reduce.out_channels)
        return _chain("squeeze-and-excitation", start, [
            ("global average pool", "flow", f"{c}×1×1"), (f"1×1 → {reduced} → {p.get('act', 'relu')}", "conv",
                                                          f"{reduced}×1×1"),
            (f"1×1 → {c} → {p.get('gate', 'hsigmoid')}", "conv", f"{c}×1×1"), ("x ⊙ gate", "add", start)])
    if t == "conv":
        g = p.get("groups", 1)
        groups = " depthwise" if g == 0 else (f" g{g}" if g > 1 else "")
        steps, _, _ = _conv_steps(p["out"], h, w, p.get("kernel", 3), p.get("stride", 1), groups,
                                  p.get("act", "relu"), p.get("anti_alias", False))
        return _chain("conv → BN → activation", start, steps)
    if t == "dwsep":
        steps, h2, w2 = _conv_steps(c, h, w, p.get("kernel", 3), p.get("stride", 1), " depthwise",
                                    p.get("act", "relu"), p.get("anti_alias", False), "dw")
        if p.get("se", 0) > 0:
            steps += _se_steps(c, int(module.se.reduce.out_channels), h2, w2, p.get("se_gate", "hsigmoid"))
        steps.append((f"pw 1×1 → {p['out']} → BN{' → ' + p.get('act', 'relu') if p.get('pw_act') else ''}", "conv",
                      _s(p["out"], h2, w2)))
        inside = _chain("depthwise-separable convolution", start, steps)
        return _with_residual(inside, start) if module.has_residual else inside
    if t == "ir":
        mid = int(module.mid_channels)
        act = p.get("act", "relu")
        steps = [(f"expand 1×1 → {mid} → BN → {act}", "conv", _s(mid, h, w))]
        more, h2, w2 = _conv_steps(mid, h, w, p.get("kernel", 3), p.get("stride", 1), " depthwise", act,
                                   p.get("anti_alias", False), "dw")
        steps += more
        if p.get("se", 0) > 0:
            steps += _se_steps(mid, int(module.se.reduce.out_channels), h2, w2, p.get("se_gate", "hsigmoid"))
        steps.append((f"project 1×1 → {p['out']} → BN (linear)", "conv", _s(p["out"], h2, w2)))
        inside = _chain(f"inverted residual (MBConv), expansion {p.get('expand', 4.0)}", start, steps)
        return _with_residual(inside, start) if module.has_residual else inside
    if t in ("repconv", "mobileone"):
        k = p.get("kernel", 3)
        s = p.get("stride", 1)
        h2, w2 = _down(h, s), _down(w, s)
        b = p.get("branches", 1)
        if t == "repconv":
            g = p.get("groups", 1)
            steps = [(f"Σ {b}× {k}×{k}{' g' + str(g) if g != 1 else ''} conv-BN + 1×1 conv-BN + identity BN "
                      f"(folded to one {k}×{k} at deploy) → {p.get('act', 'relu')}", "conv", _s(p["out"], h2, w2))]
            return _chain("re-parameterisable convolution", start, steps)
        steps = [(f"depthwise RepConv {k}×{k} s{s} ({b} branch{'es' if b > 1 else ''}, folded at deploy)", "conv",
                  _s(c, h2, w2)),
                 (f"point-wise RepConv 1×1 → {p['out']} (folded at deploy)", "conv", _s(p["out"], h2, w2))]
        return _chain("MobileOne block", start, steps)
    if t == "mobilevit":
        out = p.get("out") or c
        d = p.get("dim", 96)
        patch = p.get("patch", 2)
        ph, pw = math.ceil(h / patch) * patch, math.ceil(w / patch) * patch
        tokens = (ph // patch) * (pw // patch)
        k = p.get("kernel", 3)
        nodes = [("in", f"input {start}", "io"), ("local", f"local {k}×{k} conv → BN → act", "conv"),
                 ("tokens", f"1×1 → d = {d}", "conv"), ("unfold", f"unfold {patch}×{patch} patches", "flow"),
                 ("transformer", f"{p.get('depth', 2)} × transformer (MHSA {p.get('heads', 4)} heads + MLP)",
                  "attention"),
                 ("fold", "LayerNorm, fold", "flow"), ("project", f"1×1 → {out} → BN → act", "conv"),
                 ("concat", "concat with input", "add"), ("fuse", f"fuse {k}×{k} conv → {out} → BN → act", "conv"),
                 ("out", f"output {_s(out, h, w)}", "io")]
        seq = f"{patch * patch}×{tokens}×{d}"
        edges = [("in", "local", start), ("local", "tokens", start), ("tokens", "unfold", _s(d, h, w)),
                 ("unfold", "transformer", seq), ("transformer", "fold", seq), ("fold", "project", _s(d, h, w)),
                 ("project", "concat", _s(out, h, w)), ("in", "concat", start),
                 ("concat", "fuse", _s(c + out, h, w)), ("fuse", "out", _s(out, h, w))]
        return Inside("MobileViT block", tuple(nodes), tuple(edges))
    # a block type this view does not know: one opaque step, its output shape from the count
    return _chain(get_block(t).summary, start, [(t, "conv", start)])


# ----------------------------------------------------------------------------- the design graph


def _group_of(stage: int, n_stages: int) -> str:
    return "stem" if stage == 0 else ("head" if stage > n_stages else f"stage-{stage}")


def _unit_node(node_id: str, unit_type: str, label: str, group: str, key: str | None, place: str,
               in_shape: tuple[int, ...], out_shape: tuple[int, ...], params: int, macs: int,
               inside: Inside | None) -> GraphNode:
    if unit_type == "parallel":
        category, colour = "parallel", PARALLEL_COLOUR
    else:
        category, colour = get_block(unit_type).category, block_colour(unit_type)
    return GraphNode(id=node_id, kind="unit", label=label, type=unit_type, colour=colour,
                     shape=CATEGORY_SHAPES.get(category, "round-rectangle"), group=group, key=key, place=place,
                     in_shape=tuple(in_shape), out_shape=tuple(out_shape), params=params, macs=macs, inside=inside)


def _flow(node_id: str, kind: str, label: str, group: str) -> GraphNode:
    return GraphNode(id=node_id, kind=kind, label=label, type=kind, colour=FLOW_COLOUR, shape="ellipse", group=group)


def _has_residual(unit: Unit, row: BlockRow) -> bool:
    """``dwsep`` / ``ir`` add their input: ``residual: true``, stride 1 and equal in and out shapes."""
    config = unit.config
    return (isinstance(config, BlockSpec) and config.type in ("dwsep", "ir") and config.params.get("residual", True)
            and config.params.get("stride", 1) == 1 and tuple(row.in_shape) == tuple(row.out_shape))


def design_graph(spec: ArchitectureSpec, analysis: Analysis, selected: str | None = None) -> DesignGraph:
    """Nodes, edges and stage groups of a counted design (``analysis = analyze(spec)``).

    ``selected`` (a ``BlockRef.key``) marks the block the editor shows. Parallel columns' blocks
    are counted one by one (``count_unit``, cached) for their own shapes and numbers.
    """
    units = expand_units(spec)
    if len(units) != len(analysis.blocks):
        raise ValueError("design_graph: the analysis is not of this design; analyse the design first")
    n = len(spec.stages)
    g = DesignGraph(name=spec.name, selected=selected)
    in_shape = analysis.input_shape
    g.nodes.append(_flow("input", "input", f"input {shape_text(in_shape)}", _group_of(units[0].stage, n)))
    prev = "input"
    groups: dict[str, tuple[int, tuple[int, ...]]] = {}
    for i, (unit, row) in enumerate(zip(units, analysis.blocks, strict=True)):
        group = _group_of(unit.stage, n)
        groups[group] = (unit.stage, row.out_shape)
        addr = unit.address
        key = BlockRef(addr.stage, addr.block).key
        nid = f"u{i}"
        label = f"{unit.name} · {unit.type}\n{shape_text(row.out_shape)}"
        if isinstance(unit.config, ParallelSpec):
            g.nodes.append(_flow(f"{nid}-split", "split", "split", group))
            g.edges.append(GraphEdge(prev, f"{nid}-split", "data", shape_text(row.in_shape)))
            merge = unit.config.merge
            g.nodes.append(_unit_node(f"{nid}-merge", "parallel", f"{unit.name} · {merge}\n{shape_text(row.out_shape)}",
                                      group, key, unit.place, row.in_shape, row.out_shape, row.params, row.macs,
                                      None))
            for b, column in enumerate(unit.config.branches, 1):
                col_prev, shape = f"{nid}-split", tuple(row.in_shape)
                for j, block in enumerate(column, 1):
                    c = count_unit(block.model_dump_json(), shape, spec.num_classes)
                    bid = f"{nid}-c{b}-{j}"
                    g.nodes.append(_unit_node(
                        bid, block.type, f"{block.type}\n{shape_text(c.out_shape)}", group, key,
                        f"{unit.place}, branch {b}, block {j}", shape, c.out_shape, c.params, c.macs,
                        block_inside(block, shape, spec.num_classes)))
                    g.edges.append(GraphEdge(col_prev, bid, "branch" if j == 1 else "data", shape_text(shape)))
                    col_prev, shape = bid, tuple(c.out_shape)
                g.edges.append(GraphEdge(col_prev, f"{nid}-merge", "merge", shape_text(shape)))
            prev = f"{nid}-merge"
            continue
        inside = block_inside(unit.config, row.in_shape, spec.num_classes)
        g.nodes.append(_unit_node(nid, unit.type, label, group, key, unit.place, row.in_shape, row.out_shape,
                                  row.params, row.macs, inside))
        g.edges.append(GraphEdge(prev, nid, "data", shape_text(row.in_shape)))
        if _has_residual(unit, row):
            g.nodes.append(_flow(f"{nid}-add", "add", "+", group))
            g.edges.append(GraphEdge(nid, f"{nid}-add", "data", shape_text(row.out_shape)))
            g.edges.append(GraphEdge(prev, f"{nid}-add", "residual", shape_text(row.in_shape)))
            prev = f"{nid}-add"
        else:
            prev = nid
    names = [st.name for st in spec.stages]
    for gid, (stage, out_shape) in groups.items():
        if gid == "stem":
            label = "stem"
        elif gid == "head":
            label = "head"
        else:
            st = spec.stages[stage - 1]
            label = f"stage {stage}" + (f" · {names[stage - 1]}" if names[stage - 1] else "") + (
                f" · ×{st.repeat}" if st.repeat > 1 else "")
        resolution = f"{out_shape[2]}×{out_shape[3]}" if len(out_shape) == 4 else f"{out_shape[-1]} classes"
        g.groups.append(GraphGroup(gid, label, resolution, stage))
    return g
