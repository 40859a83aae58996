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
- bytes = fp32 inputs + outputs + weights (4 bytes each): the definition of memory traffic that
  ``analysis`` uses per unit (``explorer.traffic``), applied here to each node of the exported graph. The
  int8 predictor (``DeviceProfile.int8_profile``) runs this formula on the same layers with its
  own factors and 1 byte per element (the bandwidth taken 4× instead of dividing every layer).

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
from functools import lru_cache

import numpy as np

from ..spec import ArchitectureSpec, UnitAddress, config_from_json, expand_units
from .profiles import KINDS, DeviceProfile

__all__ = ["FEATURES", "Layer", "LayerTime", "UnitTime", "feature_vector", "layer_profile", "layer_terms", "predict",
           "predict_by_units", "predict_layers", "predict_units", "unit_feature_vectors", "unit_layers",
           "unit_of"]

BYTES = 4  # fp32

#: the calibration's design-matrix columns, in order (see ``layer_terms``)
FEATURES = (*(f"compute_{k}" for k in KINDS), "memory", "elementwise", "layers", "elementwise_layers", "const")
_COLUMN = {name: i for i, name in enumerate(FEATURES)}


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
    feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
             for i in session.get_inputs()}
    values = session.run(None, feeds)
    outputs = zip(session.get_outputs(), values, strict=True)
    shapes: dict[str, tuple[int, ...]] = {o.name: tuple(v.shape) for o, v in outputs}
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


@lru_cache(maxsize=4096)
def unit_layers(config_json: str, in_shape: tuple[int, ...], num_classes: int) -> tuple[Layer, ...]:
    """The ONNX nodes of one unit exported on its own at ``in_shape`` (cached by the analysis's unit key).

    A search's child differs from its parent in a unit or two, so its prediction exports only those
    (``predict_by_units``) instead of the whole network.
    """
    import io
    import warnings

    import torch

    from ..build import build_unit, reparameterize
    from ..export import OPSET

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = reparameterize(build_unit(config_from_json(config_json), in_shape[1], num_classes)).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(in_shape),), buffer, dynamo=False, opset_version=OPSET,  # type: ignore[arg-type]
                          input_names=["input"], output_names=["output"], do_constant_folding=True)
    return tuple(onnx_layers(buffer.getvalue()))


def unit_feature_vectors(spec: ArchitectureSpec, profile: DeviceProfile) -> list[tuple[UnitAddress, np.ndarray]]:
    """(address, ideal seconds per term) of every unit, each from its own small graph (``unit_layers``)."""
    from ..analysis import analyze

    out = []
    for unit, row in zip(expand_units(spec), analyze(spec).blocks, strict=True):
        layers = list(unit_layers(unit.config.model_dump_json(), tuple(row.in_shape), spec.num_classes))
        out.append((unit.address, _terms(layers, profile).sum(axis=0)))
    return out


def predict_by_units(spec: ArchitectureSpec, profile: DeviceProfile) -> float:
    """``predict`` as a sum of per-unit terms, each unit exported and cached on its own (milliseconds).

    Equal to ``predict`` up to the graph-level shape arithmetic the exporter keeps between units
    (a ``Concat`` of a few int64 values where a unit resizes to its input's size): under 0.5 % on
    every preset (``tests/test_predictor_units.py``).
    """
    total = sum((v for _, v in unit_feature_vectors(spec, profile)), np.zeros(len(FEATURES)))
    total[_COLUMN["const"]] = 1e-3
    return float(total @ coefficients(profile)) * 1e3


def layer_terms(layer: Layer, profile: DeviceProfile) -> np.ndarray:
    """The one per-layer formula, as ideal seconds per term (``FEATURES`` order; ``const`` is 0).

    A compute layer: ``2·MACs / peak`` in its kind's column, ``bytes / bandwidth`` in ``memory``,
    1 µs in ``layers``; an elementwise layer: ``bytes / bandwidth`` in ``elementwise``, 1 µs in
    ``elementwise_layers``. The layer's time is ``layer_terms(l) · coefficients(profile)``.
    """
    row = np.zeros(len(FEATURES))
    memory = layer.bytes / (profile.bandwidth_gbs * 1e9)
    if layer.kind == "elementwise":
        row[_COLUMN["elementwise"]] = memory
        row[_COLUMN["elementwise_layers"]] = 1e-6
    else:
        row[_COLUMN[f"compute_{layer.kind}"]] = 2 * layer.macs / (profile.peak_gflops * 1e9)
        row[_COLUMN["memory"]] = memory
        row[_COLUMN["layers"]] = 1e-6
    return row


def _terms(layers: list[Layer], profile: DeviceProfile) -> np.ndarray:
    """``len(layers) × len(FEATURES)``: one ``layer_terms`` row per layer."""
    return np.array([layer_terms(layer, profile) for layer in layers]).reshape(len(layers), len(FEATURES))


def feature_vector(spec: ArchitectureSpec, profile: DeviceProfile) -> np.ndarray:
    """Ideal seconds per term (``FEATURES`` order): the sum of every layer's ``layer_terms``, plus 1 ms of ``const``."""
    total = _terms(layer_profile(spec), profile).sum(axis=0)
    total[_COLUMN["const"]] = 1e-3
    return total


def coefficients(profile: DeviceProfile) -> np.ndarray:
    """The profile's factors in ``FEATURES`` order (overhead in µs, const in ms)."""
    return np.array([*(profile.scale(k) for k in KINDS), profile.memory_scale, profile.elementwise_scale,
                     profile.overhead_us, profile.elementwise_overhead_us, profile.const_ms])


def predict(spec: ArchitectureSpec, profile: DeviceProfile) -> float:
    """Predicted latency in milliseconds (batch 1, one thread)."""
    return float(feature_vector(spec, profile) @ coefficients(profile)) * 1e3


@dataclass(frozen=True)
class LayerTime:
    """One layer of the exported graph with its predicted time."""

    layer: Layer
    ms: float


def predict_layers(spec: ArchitectureSpec, profile: DeviceProfile) -> list[LayerTime]:
    """Per-layer predicted milliseconds (their sum plus ``profile.const_ms`` is ``predict``)."""
    layers = layer_profile(spec)
    ms = _terms(layers, profile) @ coefficients(profile) * 1e3
    return [LayerTime(layer, float(t)) for layer, t in zip(layers, ms, strict=True)]


def summary_json(spec: ArchitectureSpec, profile: DeviceProfile) -> str:
    return json.dumps({"device": profile.name, "predicted_ms": predict(spec, profile)})


def unit_of(layer_name: str) -> str | None:
    """The module path of the explorer unit an ONNX node belongs to (``Unit.module_path``), from its name.

    ``/stem/b1/conv/Conv`` -> ``stem.b1``; ``/stages.1/b3/...`` -> ``stages.1.b3``; ``/head/...`` ->
    ``head``; anything else (graph-level glue) -> ``None``.
    """
    parts = [p for p in layer_name.split("/") if p]
    if len(parts) >= 2 and (parts[0] == "stem" or parts[0].startswith("stages.")):
        return f"{parts[0]}.{parts[1]}"
    if parts and parts[0] == "head":
        return "head"
    return None


@dataclass(frozen=True)
class UnitTime:
    """One unit's predicted time: the per-layer times of its ONNX nodes, summed.

    ``address`` is ``None`` for graph-level glue outside every unit (named ``other``). A unit's MACs
    and params are the analysis's (``analyze(spec).blocks``, matched by address), not repeated here.
    """

    address: UnitAddress | None
    name: str
    layers: int
    ms: float


def predict_units(spec: ArchitectureSpec, profile: DeviceProfile) -> list[UnitTime]:
    """Per-unit predicted milliseconds, in execution order; their ``ms`` plus ``profile.const_ms`` is ``predict``."""
    units = {u.module_path: u for u in expand_units(spec)}
    sums: dict[str | None, tuple[int, float]] = {path: (0, 0.0) for path in units}
    for row in predict_layers(spec, profile):
        path = unit_of(row.layer.name)
        key = path if path in units else None
        count, ms = sums.get(key, (0, 0.0))
        sums[key] = (count + 1, ms + row.ms)
    out = [UnitTime(unit.address, unit.name, *sums[path]) for path, unit in units.items() if sums[path][0]]
    if None in sums:
        out.append(UnitTime(None, "other", *sums[None]))
    return out
