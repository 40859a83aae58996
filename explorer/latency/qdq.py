"""One static QDQ quantization step for every int8 graph the project makes.

``quantize_qdq(fp32, feeds)``: ONNX bytes -> QDQ int8 ONNX bytes through ONNX Runtime:

1. ``unshare_initializers``: every node gets its own copy of a constant that several nodes read;
2. ``quant_pre_process``: shape inference, and ONNX Runtime's graph optimisations when ``optimise``;
3. ``quantize_static`` in the QDQ format: int8 weights (symmetric, per output channel unless
   ``per_channel=False``), uint8 activations (asymmetric, per tensor), each activation x stored as
   q = clamp(round(x / s) + z, 0, 255) with (s, z) from the range that ``method`` calibrates on
   ``feeds`` (``{input name: array}`` each): ``minmax`` the observed range, ``percentile`` the
   99.999th percentile of |x|, ``entropy`` the KL-optimal threshold;
4. with ``hardswish="clip"``, every ``HardSwish(x)`` is first rewritten as x · Clip(x + 3, 0, 6) · ⅙
   (the same function: ONNX defines HardSwish(x) = x · max(0, min(1, x/6 + ½))). ONNX Runtime's
   quantizer has no int8 HardSwish, so by default it runs in fp32 between dequantize and quantize
   nodes at full resolution; rewritten, Add and Mul run as QLinearAdd/QLinearMul and the Clip is
   absorbed in the quantization range. More tensors are rounded to int8 on the way, so its
   accuracy effect must be measured (``benchmarks/int8.py --hardswish clip``); the fp32 graph keeps
   ONNX Runtime's fused HardSwish;
5. the nodes of the units in ``keep_fp32`` (unit module paths such as ``stem.b1``, see
   ``predictor.unit_of``) are left out of quantization (``nodes_to_exclude``): they read and write
   fp32, with dequantize/quantize at their borders.

``explorer quantize`` feeds real images; the latency profiler feeds seeded random inputs (right for
timing, meaningless for accuracy). Only numpy is imported here at module level: onnx and ONNX
Runtime's quantizer are imported when a graph is quantized, so the UI's start-up does not load them.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .predictor import unit_of

__all__ = ["HARDSWISH", "METHODS", "hardswish_as_clip", "nodes_of_units", "quantize_qdq", "unshare_initializers"]

#: calibration methods: our name -> ONNX Runtime's ``CalibrationMethod`` member
METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}
#: how a HardSwish enters the int8 graph: as it is (fp32 inside Q/DQ) or as Add/Clip/Mul (int8)
HARDSWISH = ("keep", "clip")


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """ONNX Runtime's quantizer logs through the root logger (per-channel notes on 1-D BN weights): hush it."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def unshare_initializers(proto: Any) -> Any:
    """Give every node its own copy of an initializer that several nodes read.

    The exporter merges equal constants: the zero biases of freshly folded BatchNorms all become one
    tensor, and ONNX Runtime's quantizer leaves a convolution whose bias is shared in fp32 (with
    dequantize/quantize around it), which a trained network (distinct biases) would not suffer.
    """
    import onnx

    graph = proto.graph
    tensors = {t.name: t for t in graph.initializer}
    seen: set[str] = set()
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name not in tensors:
                continue
            if name in seen:
                copy = onnx.TensorProto()
                copy.CopyFrom(tensors[name])
                copy.name = f"{name}__{node.name or node.op_type}_{i}"
                graph.initializer.append(copy)
                node.input[i] = copy.name
            else:
                seen.add(name)
    return proto


def hardswish_as_clip(proto: Any) -> Any:
    """Rewrite every ``HardSwish(x)`` node as ``x · Clip(x + 3, 0, 6) · ⅙`` (same outputs; see step 4).

    The new nodes keep the HardSwish node's name as a prefix (``…/HardSwish/Add``), so they stay in
    its unit; its output tensor keeps its name.
    """
    from onnx import helper, numpy_helper

    graph = proto.graph
    if not any(n.op_type == "HardSwish" for n in graph.node):
        return proto
    constants = {"three": 3.0, "zero": 0.0, "six": 6.0, "sixth": 1.0 / 6.0}
    names = {k: f"hardswish_as_clip.{k}" for k in constants}
    graph.initializer.extend(numpy_helper.from_array(np.array(v, np.float32), names[k]) for k, v in constants.items())
    nodes = []
    for k, n in enumerate(graph.node):
        if n.op_type != "HardSwish":
            nodes.append(n)
            continue
        x, y, base = n.input[0], n.output[0], n.name or f"/HardSwish_{k}"
        nodes += [helper.make_node("Add", [x, names["three"]], [f"{base}/add"], name=f"{base}/Add"),
                  helper.make_node("Clip", [f"{base}/add", names["zero"], names["six"]], [f"{base}/clip"],
                                   name=f"{base}/Clip"),
                  helper.make_node("Mul", [f"{base}/clip", names["sixth"]], [f"{base}/gate"], name=f"{base}/Scale"),
                  helper.make_node("Mul", [x, f"{base}/gate"], [y], name=f"{base}/Mul")]
    del graph.node[:]
    graph.node.extend(nodes)
    return proto


def nodes_of_units(nodes: Sequence[Any], module_paths: Collection[str]) -> list[str]:
    """Names of the ONNX nodes that belong to the units ``module_paths`` (``stem.b1``, ``stages.1.b3``, ``head``).

    A node belongs to the unit its name says (the exporter names nodes by module path), else the unit
    one of its output tensors names (ONNX Runtime keeps those on the nodes it fuses).
    """
    wanted = set(module_paths)
    out = []
    for n in nodes:
        own = unit_of(n.name)
        if own is None:
            own = next((u for t in n.output if t and (u := unit_of(t)) is not None), None)
        if own in wanted:
            out.append(n.name)
    return out


class _Feeds:
    """``CalibrationDataReader`` over a list of feeds."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self.feeds, self.i = feeds, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.feeds):
            return None
        self.i += 1
        return self.feeds[self.i - 1]

    def rewind(self) -> None:
        self.i = 0


def quantize_qdq(fp32: bytes, feeds: Sequence[dict[str, np.ndarray]], *, method: str = "minmax",
                 optimise: bool = True, per_channel: bool = True, keep_fp32: Collection[str] = (),
                 hardswish: str = "keep") -> bytes:
    """fp32 ONNX bytes -> QDQ int8 ONNX bytes (see the module docstring).

    ``optimise=False`` skips ORT's pre-optimisation, which merges equal initializers again after
    ``unshare_initializers`` (an untrained network's zero biases), so that every convolution is
    quantized. ``keep_fp32``: unit module paths whose nodes stay fp32. ``hardswish``: one of
    :data:`HARDSWISH` (step 4). ``method`` must be a key of :data:`METHODS` (``KeyError`` otherwise:
    callers check and word it; likewise ``ValueError`` for ``hardswish``). ONNX Runtime's and onnx's own
    exceptions pass through (the caller words them).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibrate = getattr(CalibrationMethod, METHODS[method])
    if hardswish not in HARDSWISH:
        raise ValueError(f"hardswish {hardswish!r}: use one of {', '.join(HARDSWISH)}")
    proto = unshare_initializers(onnx.load_from_string(fp32))
    if hardswish == "clip":
        proto = hardswish_as_clip(proto)
    with tempfile.TemporaryDirectory(prefix="explorer-qdq-") as tmp:
        src, pre, out = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(proto.SerializeToString())
        with _quiet_quantizer():
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=not optimise, skip_optimization=not optimise)
            exclude = (nodes_of_units(onnx.load(str(pre), load_external_data=False).graph.node, keep_fp32)
                       if keep_fp32 else None)
            quantize_static(str(pre), str(out), _Feeds(feeds), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                            calibrate_method=calibrate, nodes_to_exclude=exclude)
        return out.read_bytes()
