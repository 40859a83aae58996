"""Where the time goes: ONNX Runtime's own profiler, per op type and per unit, fp32 beside int8.

``profile_ops(model)`` runs an ONNX model in ONNX Runtime (all graph optimisations on, as a
deployment runs it, ``threads`` intra-op threads) with its profiler enabled and returns one
``OpTime`` per kernel ONNX Runtime executed: the node's name, its op type *after* ONNX Runtime's
fusions (``QLinearConv``, ``FusedConv``, ``QuantizeLinear`` ...), the explorer unit it belongs to
and its mean time per inference (the profiler's ``<node>_kernel_time`` events over ``runs``
inferences, after ``warmup`` untimed ones; the profiler adds a few µs per kernel, so totals run
above ``measure_onnx``'s median).

Mapping a kernel to a unit. The exporter names every node by its module path
(``/stages.0/b1/embed1/embed1.0/Conv``, see ``predictor.unit_of``). ONNX Runtime keeps those names
on the nodes it fuses, but the nodes it *adds* (layout ``Transpose``/``Reorder``, a weight's
``DequantizeLinear``, the pieces of an inlined ``HardSwish`` function) carry generated names. Those
are placed by the tensors they touch in the optimised graph (which ONNX Runtime writes out for
us): first the unit named by one of their tensors, else the unit of the node consuming their
output, else of the node producing their input. Whatever stays unplaced is ``None`` (shown as
``other``: the graph's input and output conversion).

``quantize_for_timing(model)`` is the static QDQ quantization of ``latency.qdq`` (per-channel int8
weights, uint8 activations, ``quant_pre_process`` first) calibrated on a few seeded random inputs: enough to
time the int8 graph, *not* to judge its accuracy (``explorer quantize`` calibrates on real images).
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .predictor import unit_of
from .qdq import quantize_qdq

__all__ = ["OpRow", "OpTime", "compare_ops", "profile_ops", "quantize_for_timing", "unit_names"]


@dataclass(frozen=True)
class OpTime:
    """One kernel ONNX Runtime ran: mean milliseconds per inference."""

    node: str
    op_type: str
    unit: str | None  # the unit's module path (``stages.0.b1``), None for graph-level glue
    ms: float


@dataclass(frozen=True)
class OpRow:
    """One (unit, op type) cell of the comparison: fp32 and int8 milliseconds per inference."""

    unit: str  # the unit's display name (``s1.b1``) or ``other``
    op_type: str
    fp32_ms: float
    int8_ms: float
    fp32_kernels: int
    int8_kernels: int


def _optimised_graph(model: bytes, threads: int, folder: Path) -> tuple[object, list[object]]:
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(folder / "optimised.onnx")
    ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return options, list(onnx.load(str(folder / "optimised.onnx"), load_external_data=False).graph.node)


def _place_nodes(nodes: Sequence[object]) -> dict[str, str | None]:
    """Node name -> unit module path (see the module docstring for the rule)."""
    unit: dict[str, str | None] = {}
    producer: dict[str, str] = {}
    consumers: dict[str, list[str]] = defaultdict(list)
    for n in nodes:
        name = n.name  # type: ignore[attr-defined]
        for y in n.output:  # type: ignore[attr-defined]
            producer[y] = name
        for x in n.input:  # type: ignore[attr-defined]
            if x:
                consumers[x].append(name)
        own = unit_of(name)
        if own is None:
            own = next((u for t in [*n.output, *n.input] if t and (u := unit_of(t)) is not None), None)  # type: ignore[attr-defined]
        unit[name] = own
    for _ in range(16):  # propagate along the graph, hop by hop (Transpose/DQ chains, inlined functions)
        changed = False
        for n in nodes:
            name = n.name  # type: ignore[attr-defined]
            if unit[name] is not None:
                continue
            after = [unit.get(c) for y in n.output for c in consumers.get(y, [])]  # type: ignore[attr-defined]
            before = [unit.get(producer[x]) for x in n.input if x in producer]  # type: ignore[attr-defined]
            found = next((u for u in [*after, *before] if u is not None), None)
            if found is not None:
                unit[name] = found
                changed = True
        if not changed:
            break
    return unit


def profile_ops(model: bytes, runs: int = 20, warmup: int = 5, threads: int = 1, seed: int = 0) -> list[OpTime]:
    """Per-kernel mean milliseconds of ``model`` (ONNX bytes) in ONNX Runtime, each placed in its unit.

    The input is seeded random normal data of the graph's input shape (dynamic dims read as 1).
    """
    import onnxruntime as ort

    if runs < 1 or warmup < 0:
        raise ValueError(f"profile runs {runs} / warmup {warmup}: use runs >= 1 and warmup >= 0")
    with tempfile.TemporaryDirectory(prefix="explorer-profile-") as tmp:
        folder = Path(tmp)
        options, nodes = _optimised_graph(model, threads, folder)
        placed = _place_nodes(nodes)
        options.optimized_model_filepath = ""  # type: ignore[attr-defined]
        options.enable_profiling = True  # type: ignore[attr-defined]
        options.profile_file_prefix = str(folder / "profile")  # type: ignore[attr-defined]
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(seed)
        feeds = {i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
                 for i in session.get_inputs()}
        for _ in range(warmup + runs):
            session.run(None, feeds)
        per_node: dict[str, list[float]] = defaultdict(list)
        op_types: dict[str, str] = {}
        for e in _events(session.end_profiling()):
            per_node[str(e["node"])].append(float(e["dur"]))  # type: ignore[arg-type]
            op_types[str(e["node"])] = str(e["op"])
    # the profiler records the warm-up runs too: keep each kernel's last ``runs`` events (µs -> ms)
    totals = {node: sum(durs[-runs:]) / runs / 1e3 for node, durs in per_node.items()}
    return [OpTime(node, op_types[node], placed.get(node), ms) for node, ms in totals.items()]


def _events(path: str) -> list[dict[str, object]]:
    with open(path) as f:
        raw = json.load(f)
    out: list[dict[str, object]] = []
    for e in raw:
        name = str(e.get("name", ""))
        if e.get("cat") == "Node" and name.endswith("_kernel_time"):
            out.append({"node": name[: -len("_kernel_time")], "op": str(e.get("args", {}).get("op_name", "?")),
                        "dur": float(e.get("dur", 0))})
    return out


def unit_names(module_paths: dict[str, str], ops: Sequence[OpTime]) -> list[tuple[str, OpTime]]:
    """Each op with its unit's display name (``module_paths``: module path -> name), ``other`` when unplaced."""
    return [(module_paths.get(o.unit, "other") if o.unit else "other", o) for o in ops]


def compare_ops(fp32: Sequence[OpTime], int8: Sequence[OpTime], module_paths: dict[str, str]) -> list[OpRow]:
    """Sum both profiles per (unit, op type); rows in the units' order (``module_paths``), ``other`` last.

    ``module_paths`` maps a unit's module path to its display name, in execution order
    (``{u.module_path: u.name for u in expand_units(spec)}``).
    """
    cells: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0, 0])
    for column, ops in ((0, fp32), (1, int8)):
        for name, op in unit_names(module_paths, ops):
            cell = cells[(name, op.op_type)]
            cell[column] += op.ms
            cell[2 + column] += 1
    order = {name: i for i, name in enumerate([*module_paths.values(), "other"])}
    rows = [OpRow(unit, op, c[0], c[1], int(c[2]), int(c[3])) for (unit, op), c in cells.items()]
    return sorted(rows, key=lambda r: (order.get(r.unit, len(order)), -(r.fp32_ms + r.int8_ms)))


def quantize_for_timing(model: bytes, calibration: int = 8, seed: int = 0, hardswish: str = "keep") -> bytes:
    """Static QDQ int8 (``latency.qdq``: per-channel int8 weights, uint8 activations) on seeded random inputs.

    For timing only: random inputs give scales that a real image set would not, so the accuracy
    of the result means nothing (``explorer quantize`` calibrates on real images). ORT's
    pre-optimisation is skipped (``optimise=False``): it would share an untrained network's equal
    zero biases again, and a shared bias leaves its convolution in fp32. ``hardswish``: see
    ``latency.qdq`` (``"clip"``: HardSwish rewritten so that it runs in int8).
    """
    import onnx

    inputs = [(i.name, [d.dim_value or 1 for d in i.type.tensor_type.shape.dim])
              for i in onnx.load_from_string(model).graph.input]
    rng = np.random.default_rng(seed)
    feeds = [{name: rng.standard_normal(shape).astype(np.float32) for name, shape in inputs}
             for _ in range(calibration)]
    return quantize_qdq(model, feeds, optimise=False, hardswish=hardswish)
