"""One static QDQ quantization step for every int8 graph the project makes.

``quantize_qdq(fp32, feeds)``: ONNX bytes -> QDQ int8 ONNX bytes through ONNX Runtime:
``quant_pre_process`` (shape inference, and ORT's graph optimisations when ``optimise``), then
``quantize_static`` in the QDQ format with int8 weights per output channel (symmetric) and uint8
activations (asymmetric), activation ranges calibrated on ``feeds`` (``{input name: array}``
each) by ``method``. ``explorer quantize`` feeds real images; the latency profiler feeds seeded
random inputs (right for timing, meaningless for accuracy).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["METHODS", "quantize_qdq", "unshare_initializers"]

#: calibration methods: our name -> ONNX Runtime's ``CalibrationMethod`` member
METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}


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


def quantize_qdq(fp32: bytes, feeds: Sequence[dict[str, np.ndarray]], method: str = "minmax",
                 optimise: bool = True) -> bytes:
    """fp32 ONNX bytes -> QDQ int8 ONNX bytes (see the module docstring).

    ``optimise=False`` skips ORT's pre-optimisation, which merges equal initializers again after
    ``unshare_initializers`` (an untrained network's zero biases), so that every convolution is
    quantized. ONNX Runtime's and onnx's own exceptions pass through (the caller words them).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    proto = unshare_initializers(onnx.load_from_string(fp32))
    with tempfile.TemporaryDirectory(prefix="explorer-qdq-") as tmp:
        src, pre, out = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(proto.SerializeToString())
        with _quiet_quantizer():
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=not optimise, skip_optimization=not optimise)
            quantize_static(str(pre), str(out), _Feeds(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                            calibrate_method=getattr(CalibrationMethod, METHODS[method]))
        return out.read_bytes()
