"""Latency predictor: a per-layer roofline, summed, with factors a calibration fits.

``layer_profile(spec)`` exports the reparameterised design to ONNX (the graph ONNX Runtime
runs; the TorchScript exporter already folds BatchNorm into the convolutions) and lists every
node with its kind, MACs and bytes moved (shapes from one run of the graph on zeros):

- kinds: ``conv`` (k > 1, dense), ``pointwise`` (1×1, dense), ``depthwise`` (grouped, incl.
  depth-wise), ``linear`` (Gemm / MatMul by a weight), ``attention`` (MatMul of two
  activations: ``q kᵀ`` and ``attn v``), and ``elementwise`` for every other kernel
  (activations, the condenser's pooling, upsampling, sigmoid gate and scale, residual adds,
  norms); view-only ops (reshape, shape arithmetic) cost nothing, nor do activations that ONNX
  Runtime fuses into the convolution feeding them;
- bytes = fp32 inputs + outputs + weights (4 bytes each).

Per layer ``l`` of kind ``k`` on device ``D``::

    t_l = s_k · 2·MACs_l / peak_D  +  m · bytes_l / bandwidth_D  +  overhead_D
    t   = Σ_l t_l + const_D

(``m`` is ``memory_scale`` for compute layers and ``elementwise_scale`` for the rest, and the
overhead of an elementwise layer is ``elementwise_overhead_us``: ONNX Runtime fuses many of
them into the preceding convolution, so calibration learns what they cost on average). Compute
and memory time are *added*, not ``max``-ed: on a single core the two barely overlap for the
small layers of these networks, and the sum is linear in the factors, so calibration is a
non-negative least-squares fit (``calibrate.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from ..spec import ArchitectureSpec
from .profiles import KINDS, DeviceProfile

__all__ = ["FEATURES", "Layer", "feature_vector", "layer_profile", "predict", "predict_layers"]

BYTES = 4  # fp32

#: the calibration's design-matrix columns, in order (see ``feature_vector``)
FEATURES = (*(f"compute_{k}" for k in KINDS), "memory", "elementwise", "layers", "elementwise_layers", "const")


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str
    macs: int
    bytes: int


#: ONNX ops that only change a tensor's view or describe shapes: no kernel time of their own
VIEW_OPS = frozenset({"Constant", "Shape", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Gather",
                      "Cast", "ConstantOfShape", "Range"})


#: activations ONNX Runtime fuses into the convolution that feeds them
FUSED_ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "Tanh"})


def _conv_kind(group: int, kernel: tuple[int, ...]) -> str:
    if group > 1:
        return "depthwise"
    return "pointwise" if all(k == 1 for k in kernel) else "conv"


def onnx_layers(model: bytes) -> list[Layer]:
    """Every node of an ONNX graph as a ``Layer`` (shapes from one ONNX Runtime run on zeros)."""
    import onnx
    import onnxruntime as ort

    # shapes: run the graph once with every intermediate value exposed (shape inference cannot
    # follow the traced ``Shape -> Resize`` arithmetic of size-matched upsampling)
    proto = onnx.load_from_string(model)
    graph = proto.graph
    known = {o.name for o in graph.output}
    graph.output.extend(onnx.ValueInfoProto(name=y) for n in graph.node for y in n.output if y and y not in known)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32) for i in session.get_inputs()}
    values = session.run(None, feeds)
    shapes: dict[str, tuple[int, ...]] = {o.name: tuple(v.shape) for o, v in zip(session.get_outputs(), values)}
    shapes.update({name: tuple(a.shape) for name, a in feeds.items()})
    weights = {t.name: tuple(t.dims) for t in graph.initializer}

    def numel(name: str) -> int:
        dims = shapes.get(name) or weights.get(name) or ()
        return int(np.prod(dims)) if dims and all(d > 0 for d in dims) else 0

    consumers: dict[str, int] = {}
    for node in graph.node:
        for x in node.input:
            consumers[x] = consumers.get(x, 0) + 1
    producer = {y: node for node in graph.node for y in node.output}
    layers: list[Layer] = []
    for i, node in enumerate(graph.node):
        if node.op_type in VIEW_OPS:
            continue
        src = producer.get(node.input[0]) if node.input else None
        if (node.op_type in FUSED_ACTIVATIONS and src is not None and src.op_type == "Conv"
                and consumers.get(node.input[0], 0) == 1):
            continue  # ONNX Runtime runs it inside the convolution (FusedConv)
        name = node.name or f"{node.op_type}_{i}"
        io = BYTES * (sum(numel(x) for x in node.input if x) + sum(numel(y) for y in node.output))
        out = numel(node.output[0]) if node.output else 0
        if node.op_type == "Conv" and node.input[1] in weights:
            w = weights[node.input[1]]  # O × I/g × kh × kw
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            layers.append(Layer(name, _conv_kind(group, w[2:]), out * int(np.prod(w[1:])), io))
        elif node.op_type in ("Gemm", "MatMul"):
            a_shape = shapes.get(node.input[0]) or weights.get(node.input[0]) or ()
            k = a_shape[-1] if a_shape else 0
            kind = "linear" if node.input[1] in weights else "attention"
            layers.append(Layer(name, kind, out * int(k), io))
        else:
            layers.append(Layer(name, "elementwise", 0, io))
    return layers


_LAYER_CACHE: dict[str, tuple[Layer, ...]] = {}
_CACHE_SIZE = 512


def layer_profile(spec: ArchitectureSpec, model: bytes | None = None) -> list[Layer]:
    """Every node of the exported inference graph with its kind, MACs and bytes (cached per spec).

    ``model``: the design's ONNX bytes when the caller already exported it (saves an export).
    """
    key = spec.model_dump_json()
    if key not in _LAYER_CACHE:
        if model is None:
            from ..export import onnx_bytes

            model = onnx_bytes(spec)
        if len(_LAYER_CACHE) >= _CACHE_SIZE:
            _LAYER_CACHE.pop(next(iter(_LAYER_CACHE)))
        _LAYER_CACHE[key] = tuple(onnx_layers(model))
    return list(_LAYER_CACHE[key])


def feature_vector(spec: ArchitectureSpec, profile: DeviceProfile) -> np.ndarray:
    """Ideal seconds per term (``FEATURES`` order): the factors multiply these to give latency."""
    compute = dict.fromkeys(KINDS, 0.0)
    memory = elementwise = 0.0
    count = count_elementwise = 0
    for layer in layer_profile(spec):
        if layer.kind == "elementwise":
            elementwise += layer.bytes / (profile.bandwidth_gbs * 1e9)
            count_elementwise += 1
        else:
            compute[layer.kind] += 2 * layer.macs / (profile.peak_gflops * 1e9)
            memory += layer.bytes / (profile.bandwidth_gbs * 1e9)
            count += 1
    return np.array([*(compute[k] for k in KINDS), memory, elementwise, count * 1e-6, count_elementwise * 1e-6, 1e-3])


def coefficients(profile: DeviceProfile) -> np.ndarray:
    """The profile's factors in ``FEATURES`` order (overhead in µs, const in ms)."""
    return np.array([*(profile.scale(k) for k in KINDS), profile.memory_scale, profile.elementwise_scale,
                     profile.overhead_us, profile.elementwise_overhead_us, profile.const_ms])


def predict(spec: ArchitectureSpec, profile: DeviceProfile) -> float:
    """Predicted latency in milliseconds (batch 1, one thread)."""
    return float(feature_vector(spec, profile) @ coefficients(profile)) * 1e3


def predict_layers(spec: ArchitectureSpec, profile: DeviceProfile) -> list[dict[str, object]]:
    """Per-layer predicted milliseconds, for charts and tables."""
    rows = []
    for layer in layer_profile(spec):
        if layer.kind == "elementwise":
            t = (profile.elementwise_scale * layer.bytes / (profile.bandwidth_gbs * 1e9)
                 + profile.elementwise_overhead_us * 1e-6)
        else:
            t = (profile.scale(layer.kind) * 2 * layer.macs / (profile.peak_gflops * 1e9)
                 + profile.memory_scale * layer.bytes / (profile.bandwidth_gbs * 1e9) + profile.overhead_us * 1e-6)
        rows.append({"name": layer.name, "kind": layer.kind, "macs": layer.macs, "bytes": layer.bytes, "ms": t * 1e3})
    return rows


def summary_json(spec: ArchitectureSpec, profile: DeviceProfile) -> str:
    return json.dumps({"device": profile.name, "predicted_ms": predict(spec, profile)})


def unit_of(layer_name: str) -> str:
    """The explorer unit an ONNX node belongs to, from the exporter's module path.

    ``/stem/b1/conv/Conv`` -> ``stem.b1``; ``/stages.1/b3/...`` -> ``s2.b3``; ``/head/...`` ->
    ``head``; anything else (graph-level glue) -> ``other``.
    """
    parts = [p for p in layer_name.split("/") if p]
    if len(parts) >= 2 and parts[0] == "stem":
        return f"stem.{parts[1]}"
    if len(parts) >= 2 and parts[0].startswith("stages."):
        return f"s{int(parts[0].split('.')[1]) + 1}.{parts[1]}"
    if parts and parts[0] == "head":
        return "head"
    return "other"


def predict_units(spec: ArchitectureSpec, profile: DeviceProfile) -> list[dict[str, object]]:
    """Per-unit predicted milliseconds (the per-layer times summed by unit, in execution order).

    Rows ``{name, layers, macs, ms}``; their ``ms`` plus ``profile.const_ms`` is ``predict``.
    """
    rows: dict[str, dict[str, object]] = {}
    for layer in predict_layers(spec, profile):
        name = unit_of(str(layer["name"]))
        row = rows.setdefault(name, {"name": name, "layers": 0, "macs": 0, "ms": 0.0})
        row["layers"] = int(row["layers"]) + 1  # type: ignore[call-overload]
        row["macs"] = int(row["macs"]) + int(layer["macs"])  # type: ignore[call-overload]
        row["ms"] = float(row["ms"]) + float(layer["ms"])  # type: ignore[arg-type]
    return list(rows.values())
