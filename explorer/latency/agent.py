"""Latency agent: a small HTTP service that times ONNX models on the board it runs on.

Depends only on the standard library, numpy and onnxruntime, so on a Raspberry Pi it needs
``pip install onnxruntime numpy`` and this one file::

    python3 agent.py --token SECRET [--host 127.0.0.1] [--port 8765] [--max-mb 64] [--max-memory-mb 1024]

(or ``explorer agent ...`` where the explorer is installed). The explorer also imports
``measure_session`` from here, so the board and the host time models the same way. Known to work
on a board: Python 3.11, numpy 1.24.2, onnxruntime 1.19.2 (``tests/test_board_versions.py``).

Protocol
--------
``GET /health`` (token required): ``{"ok": true, "busy", "device": {...}, "max_bytes",
"max_memory_bytes", "limits"}``, measuring nothing.

``POST /measure?runs=50&warmup=10&threads=1`` (token required), body: the ONNX model bytes.
Answers ``200`` with ``{"median_ms", "p90_ms", "mean_ms", "cv", "runs", "warmup", "threads",
"backend", "device": {machine, cpu, cores, onnxruntime, python}}``.

Refusals (each logged with the client address; the agent never crashes on a bad request):
``401`` no or wrong token (``Authorization: Bearer TOKEN``; compared in constant time), ``413``
a declared body over the limit (refused before reading it), ``411`` no ``Content-Length``,
``400`` a body that is not a loadable ONNX model, a model with external data, a model whose
tensors would not fit the memory limit, or absurd settings (runs outside 1..10000, warm-up
outside 0..1000, threads outside 1..256, inputs with no static shape), ``503`` with
``Retry-After`` when a measurement is already running (one at a time: a second request is
refused at once, never queued behind minutes of timing) or every request slot is taken,
``404`` an unknown path. Error texts never carry ONNX Runtime's source paths or the host name.

Robustness
----------
- One thread (``select``) accepts connections and reads request headers; at most
  ``--max-connections`` connections wait for their headers (the oldest is dropped for a new one)
  and each has ``--header-timeout`` seconds to send them. ``GET`` requests are answered by that
  thread at once, so ``/health`` answers under a flood of slow connections; ``POST`` requests go
  to at most ``MAX_WORKERS`` threads.
- A body must arrive whole within ``--read-timeout`` seconds (one deadline for the whole body,
  not per read); only then is the busy lock taken, so a slow sender never blocks measurements.
- Before anything runs, the model is read (a small protobuf reader, no ``onnx`` package): external
  data is refused, and every initializer, declared tensor and tensor whose size follows from
  constants (``ConstantOfShape``, ``Expand``, ``Tile``, ``Range``, ``Pad``, ``Resize``, ...) must fit
  ``--max-memory-mb``. The measurement then runs in a child process whose address space is capped
  at what Python and ONNX Runtime use after import plus ``--max-memory-mb`` (``RLIMIT_AS``), and
  within ``--measure-timeout`` seconds; a model that needs more is refused with 400.

Timing: ``warmup`` untimed runs, then ``runs`` timed runs of ``session.run`` on a fixed random
input; ``median``, ``p90`` (nearest rank), ``cv = std / mean``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hmac
import io
import json
import logging
import math
import os
import platform
import re
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

__all__ = ["LIMITS", "AgentServer", "check_model", "clean_error", "device_facts", "make_server", "measure_session",
           "main", "summarize_times"]

LOG = logging.getLogger("explorer.agent")

#: bounds on run settings: (lowest, highest)
LIMITS = {"runs": (1, 10_000), "warmup": (0, 1_000), "threads": (1, 256)}
MAX_INPUT_ELEMENTS = 64 * 2**20  # refuse models whose input alone would need > 256 MiB of fp32
MAX_WORKERS = 8  # threads serving POST requests (reading a body, refusing, measuring)
MAX_HEADER_BYTES = 16 * 1024  # request line and headers together
MAX_GRAPH_DEPTH = 16  # subgraphs (If/Loop/Scan bodies) nested deeper are refused
_CHILD_FLAG = "--measure-child"

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8,
              "tensor(int8)": np.int8, "tensor(bool)": np.bool_}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("model name", "hardware", "cpu model", "processor") and ":" in line:
                    value = line.split(":", 1)[1].strip()
                    if value and not value.isdigit():
                        return value
    except OSError:
        pass
    try:
        with open("/proc/device-tree/model", encoding="utf-8", errors="replace") as f:
            return f.read().strip("\x00\n ")
    except OSError:
        return platform.processor() or platform.machine()


def device_facts() -> dict[str, Any]:
    """What the timing ran on: machine, CPU model, core count, ONNX Runtime and Python versions.

    The host name is left out: replies go to whoever holds the token, possibly over a network.
    """
    import onnxruntime as ort

    return {"machine": platform.machine(), "cpu": _cpu_model(), "cores": os.cpu_count(),
            "onnxruntime": ort.__version__, "python": platform.python_version()}


def summarize_times(times_ms: list[float]) -> dict[str, float]:
    """Median, p90 (nearest rank), mean and coefficient of variation of timed runs."""
    ordered = sorted(times_ms)
    mean = statistics.fmean(ordered)
    std = statistics.pstdev(ordered) if len(ordered) > 1 else 0.0
    p90 = ordered[min(len(ordered) - 1, max(0, int(np.ceil(0.9 * len(ordered))) - 1))]
    return {"median_ms": float(statistics.median(ordered)), "p90_ms": float(p90), "mean_ms": float(mean),
            "cv": float(std / mean) if mean > 0 else 0.0}


def check_settings(runs: int, warmup: int, threads: int) -> None:
    """Raise ``ValueError`` naming the setting that is out of its bounds."""
    for name, value in (("runs", runs), ("warmup", warmup), ("threads", threads)):
        lo, hi = LIMITS[name]
        if not lo <= value <= hi:
            raise ValueError(f"{name}={value} is out of range; use {lo} to {hi}")


# --- error texts: no source paths, no host name ------------------------------------------------------

_SOURCE_REF = re.compile(r"(?:[A-Za-z]:)?(?:[\w.+~-]*[/\\])+[\w.+~-]+(?::\d+)?"  # a path, maybe :line
                         r"|\b[\w+-]+\.(?:cc|cpp|cxx|h|hpp|c|py)(?::\d+)?\b")  # a source file name
_CPP_FRAME = re.compile(r"(?:\b(?:const\s+)?[\w<>]+\s*[*&]+\s*|\b(?:void|bool|int|size_t|auto|Status)\s+)?"
                        r"\b(?:\w+::)+~?\w+(?:\((?:[^()]|\([^()]*\))*\))?(?:\s*const)?")


def clean_error(text: str, limit: int = 300) -> str:
    """One line of an error for a reply: source paths, C++ frames and the host name removed.

    ``"/onnxruntime_src/.../reshape_helper.h:91 onnxruntime::ReshapeHelper::ReshapeHelper(...) input ..."``
    becomes ``"input ..."``; the result is at most ``limit`` characters.
    """
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = " ".join(lines[:2])
    line = _CPP_FRAME.sub("", _SOURCE_REF.sub("", line))
    node = platform.node()
    if len(node) >= 2:
        line = re.sub(rf"(?<![\w-]){re.escape(node)}(?![\w-])", "<host>", line, flags=re.IGNORECASE)
    line = re.sub(r"\s+", " ", line).strip()
    return (line[:limit - 3] + "...") if len(line) > limit else (line or "no details")


# --- the model, read before anything runs: a minimal protobuf reader ----------------------------------

#: bytes per element of ONNX TensorProto.DataType (unknown types count 8; strings 8 per element)
_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 8: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16,
             16: 2, 17: 1, 18: 1, 19: 1, 20: 1, 21: 1, 22: 1}
_DECODE = {1: "<f", 6: "<i", 7: "<q", 11: "<d", 12: "<I", 13: "<Q", 2: "<B", 3: "<b", 4: "<H", 5: "<h", 9: "<B"}
_SMALL = 64  # constant tensors of at most this many elements are decoded (shapes, repeats, pads ...)


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated or malformed protobuf")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


class _RefusalError(ValueError):
    """A model the agent will not run (as opposed to bytes that are not a model)."""


#: protobuf fields read per model at most (a real model has far fewer; unpacked arrays could have millions)
MAX_FIELDS = 1_000_000
_budget = threading.local()


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` of one protobuf message: ints, or memoryviews of bytes."""
    i, n = 0, len(buf)
    while i < n:
        _budget.left = getattr(_budget, "left", MAX_FIELDS) - 1
        if _budget.left < 0:
            raise _RefusalError(f"the model has more than {MAX_FIELDS:,} protobuf fields; store tensors as raw_data")
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if i > n or field == 0:
            raise ValueError("truncated or malformed protobuf")
        yield field, wire, value


def _ints(wire: int, value: Any) -> list[int]:
    """A repeated int64 field's values, packed (wire type 2) or not, as signed integers."""
    raw = [value] if wire == 0 else []
    if wire == 2:
        i = 0
        while i < len(value):
            v, i = _varint(value, i)
            raw.append(v)
    return [v - (1 << 64) if v >= 1 << 63 else v for v in raw]


def _text(value: Any) -> str:
    return bytes(value).decode("utf-8", errors="replace")


class _Tensor:
    """The parts of a TensorProto the checks need: name, dims, type, size and (when small) values."""

    def __init__(self, buf: memoryview) -> None:
        self.name, self.dims, self.dtype, self.external = "", [], 1, False
        raw: memoryview | None = None
        typed: list[float] = []
        for field, wire, value in _fields(buf):
            if field in (4, 5, 7, 10) and (len(typed) > _SMALL or (wire == 2 and len(value) > 10 * _SMALL)):
                typed = [math.nan] * (_SMALL + 1)  # a large array: its values are never needed
                continue
            if field == 1:
                self.dims += _ints(wire, value)
            elif field == 2 and wire == 0:
                self.dtype = value
            elif field == 8 and wire == 2:
                self.name = _text(value)
            elif field == 9 and wire == 2:
                raw = value
            elif field == 13 or (field == 14 and wire == 0 and value == 1):
                self.external = True  # external_data entries, or data_location = EXTERNAL
            elif field in (5, 7) and wire in (0, 2):  # int32_data, int64_data
                typed += _ints(wire, value)
            elif field in (4, 10) and wire in (1, 2, 5):  # float_data, double_data
                fmt = "<f" if field == 4 else "<d"
                typed += [v for (v,) in struct.iter_unpack(fmt, bytes(value))]
        self.elements = math.prod(self.dims) if all(d >= 0 for d in self.dims) else -1
        self.values: list[float] | None = None
        if 0 <= self.elements <= _SMALL:
            if raw is not None and self.dtype in _DECODE:
                fmt = _DECODE[self.dtype]
                if len(raw) == self.elements * struct.calcsize(fmt):
                    self.values = [v for (v,) in struct.iter_unpack(fmt, bytes(raw))]
            elif raw is None and len(typed) == self.elements:
                self.values = typed

    @property
    def nbytes(self) -> int:
        return max(self.elements, 0) * _ITEMSIZE.get(self.dtype, 8)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


class _ModelCheck:
    """Walks a ModelProto: external data, tensor sizes, sizes that follow from constants."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.consts: dict[str, list[float]] = {}
        self.shapes: dict[str, list[int]] = {}  # fully known shapes (initializers, declared values)
        self.initializer_bytes = 0

    def too_big(self, what: str, elements: float, itemsize: int = 4) -> None:
        if elements * itemsize > self.max_bytes:
            raise _RefusalError(f"{what} would hold {int(elements):,} elements ({_gib(elements * itemsize)}), over the "
                             f"agent's memory limit of {_gib(self.max_bytes)} (--max-memory-mb)")

    def tensor(self, buf: memoryview, where: str) -> _Tensor:
        t = _Tensor(buf)
        label = f"{where} {t.name!r}" if t.name else where
        if t.external:
            raise _RefusalError(f"{label} keeps its data in an external file; the agent accepts only self-contained "
                             f"models (export without external data)")
        if t.elements < 0:
            raise _RefusalError(f"{label} has a negative dimension {t.dims}")
        self.too_big(label, t.elements, _ITEMSIZE.get(t.dtype, 8))
        return t

    def value_info(self, buf: memoryview) -> None:
        name, shape, known, dtype = "", [], True, 1
        for field, _, value in _fields(buf):
            if field == 1:
                name = _text(value)
            elif field == 2:
                for f2, _, tensor_type in _fields(value):
                    if f2 != 1:  # only tensor types have a shape to check
                        continue
                    for f3, w3, v3 in _fields(tensor_type):
                        if f3 == 1 and w3 == 0:
                            dtype = v3
                        elif f3 == 2:
                            for f4, _, dim in _fields(v3):
                                if f4 != 1:
                                    continue
                                sizes = [_ints(w5, v5)[0] for f5, w5, v5 in _fields(dim) if f5 == 1 and w5 == 0]
                                if sizes and sizes[0] >= 0:
                                    shape.append(sizes[0])
                                else:
                                    known = False  # a symbolic or missing dimension: bounded at run time
        if known and shape:
            self.too_big(f"tensor {name!r} (declared shape {shape})", math.prod(shape), _ITEMSIZE.get(dtype, 8))
            self.shapes[name] = shape

    def graph(self, buf: memoryview, depth: int) -> None:
        if depth > MAX_GRAPH_DEPTH:
            raise _RefusalError(f"subgraphs are nested more than {MAX_GRAPH_DEPTH} deep")
        nodes = []
        for field, _, value in _fields(buf):
            if field == 5:
                t = self.tensor(value, "initializer")
                self.initializer_bytes += t.nbytes
                self.too_big("the initializers together", self.initializer_bytes, 1)
                self.shapes[t.name] = t.dims
                if t.values is not None:
                    self.consts[t.name] = t.values
            elif field == 15:
                for f2, _, v2 in _fields(value):
                    if f2 in (1, 2):
                        self.tensor(v2, "sparse initializer")
            elif field in (11, 12, 13):
                self.value_info(value)
            elif field == 1:
                nodes.append(value)
        for node in nodes:
            self.node(node, depth)

    def node(self, buf: memoryview, depth: int) -> None:
        op, name, out = "", "", ""
        inputs: list[str] = []
        attrs: dict[str, Any] = {}
        for field, _, value in _fields(buf):
            if field == 1:
                inputs.append(_text(value))
            elif field == 2 and not out:
                out = _text(value)
            elif field == 3:
                name = _text(value)
            elif field == 4:
                op = _text(value)
            elif field == 5:
                attrs.update(self.attribute(value, depth))
        label = f"the output of {op} node {name or out or '?'!r}"

        def c(i: int) -> list[float] | None:  # the value of input i when it is a known constant
            return self.consts.get(inputs[i]) if i < len(inputs) and inputs[i] else None

        def known_elements(i: int) -> int:  # elements of input i when its shape is known, else 1 (a lower bound)
            shape = self.shapes.get(inputs[i]) if i < len(inputs) else None
            return math.prod(shape) if shape else 1

        def prod(values: list[float], low: float) -> float:
            return math.prod(max(v, low) for v in values)

        first, second = c(0), c(1)
        if op == "Constant":
            value = attrs.get("value")
            if isinstance(value, _Tensor):
                if value.values is not None:
                    self.consts[out] = value.values
                self.shapes[out] = value.dims
            elif isinstance(attrs.get("value_ints"), list):
                self.consts[out] = [float(v) for v in attrs["value_ints"]]
            elif isinstance(attrs.get("value_int"), int):
                self.consts[out], self.shapes[out] = [float(attrs["value_int"])], []
        elif op in ("Identity", "Cast") and first is not None:
            to_int = op == "Cast" and attrs.get("to") in (6, 7)
            self.consts[out] = [float(int(v)) if to_int else v for v in first]
        elif op == "Shape" and inputs and inputs[0] in self.shapes and "start" not in attrs and "end" not in attrs:
            self.consts[out] = [float(d) for d in self.shapes[inputs[0]]]
        elif op == "Concat" and inputs:
            parts = [c(k) for k in range(len(inputs))]
            if all(p is not None for p in parts):
                self.consts[out] = [v for p in parts if p is not None for v in p]
        elif op in ("Mul", "Add") and first is not None and second is not None:
            a, b = first, second
            if len(a) == len(b) or min(len(a), len(b)) == 1:
                pairs = [(a[0] if len(a) == 1 else a[k], b[0] if len(b) == 1 else b[k])
                         for k in range(max(len(a), len(b)))]
                self.consts[out] = [x * y if op == "Mul" else x + y for x, y in pairs]
        elif op == "ConstantOfShape" and first is not None:
            value = attrs.get("value")
            self.too_big(label, prod(first, 0), _ITEMSIZE.get(value.dtype, 8) if isinstance(value, _Tensor) else 4)
        elif op == "Expand" and second is not None:
            self.too_big(label, max(prod(second, 1), known_elements(0)))
        elif op == "Tile" and second is not None:
            self.too_big(label, known_elements(0) * prod(second, 0))
        elif op == "Range":
            operands = [c(k) for k in range(3)]
            if all(o is not None and len(o) == 1 for o in operands):
                start, limit, delta = (o[0] for o in operands if o is not None)
                self.too_big(label, max(math.ceil((limit - start) / delta), 0) if delta else 0)
        elif op == "Pad" and second is not None and len(second) % 2 == 0:
            half = len(second) // 2
            shape = self.shapes.get(inputs[0], [1] * half)
            if len(shape) == half:
                self.too_big(label, math.prod(max(d + second[k] + second[k + half], 0) for k, d in enumerate(shape)))
        elif op in ("Resize", "Upsample"):
            sizes = c(3) if op == "Resize" else None
            scales = c(2) if op == "Resize" else (second or attrs.get("scales"))
            if sizes:
                self.too_big(label, prod(sizes, 0))
            elif isinstance(scales, list) and scales:
                self.too_big(label, known_elements(0) * prod(scales, 0))
        elif op == "OneHot" and second is not None and len(second) == 1:
            self.too_big(label, known_elements(0) * max(second[0], 0))
        elif op in ("RandomNormal", "RandomUniform") and isinstance(attrs.get("shape"), list):
            self.too_big(label, prod(attrs["shape"], 0))

    def attribute(self, buf: memoryview, depth: int) -> dict[str, Any]:
        name, found = "", None  # type: tuple[str, Any]
        ints: list[int] = []
        floats: list[float] = []
        for field, wire, value in _fields(buf):
            if field == 1:
                name = _text(value)
            elif field == 3 and wire == 0:
                found = _ints(wire, value)[0]
            elif field == 8:
                ints += _ints(wire, value)
            elif field == 7:
                floats += [v for (v,) in struct.iter_unpack("<f", bytes(value))] if wire in (2, 5) else []
            elif field in (5, 10):
                found = self.tensor(value, f"tensor attribute {name!r}" if name else "tensor attribute")
            elif field in (22, 23):
                for f2, _, v2 in _fields(value):
                    if f2 in (1, 2):
                        self.tensor(v2, "sparse tensor attribute")
            elif field in (6, 11):
                self.graph(value, depth + 1)
        if name in ("value_int", "to") and isinstance(found, int):
            return {name: found}
        if ints:
            return {name: ints}
        if floats:
            return {name: floats}
        return {name: found} if found is not None else {}


def check_model(model: bytes, max_tensor_bytes: int) -> None:
    """Refuse (``ValueError``) a model ONNX Runtime should not be given, before it sees it.

    Reads the ModelProto's wire format (no ``onnx`` package on a board): a tensor with external
    data (ONNX Runtime would read a file on this machine), subgraphs nested past
    ``MAX_GRAPH_DEPTH``, and any tensor of more than ``max_tensor_bytes``: initializers (and their
    sum), constants, declared graph inputs/outputs/value_info with fully known shapes, and outputs
    whose size follows from constant operands (``ConstantOfShape``, ``Expand``, ``Tile``,
    ``Range``, ``Pad``, ``Resize``/``Upsample``, ``OneHot``, ``RandomNormal``/``RandomUniform``;
    constants are followed through ``Constant``, ``Identity``, ``Cast``, ``Shape`` of a known
    shape, ``Concat``, ``Mul`` and ``Add``). Sizes that only appear at run time are bounded by the
    measuring process's memory limit instead.
    """
    check = _ModelCheck(max_tensor_bytes)
    _budget.left = MAX_FIELDS
    try:
        view = memoryview(model)
        graphs = 0
        for field, wire, value in _fields(view):
            if field == 7 and wire == 2:
                check.graph(value, 0)
                graphs += 1
            elif field == 20 and wire == 2:  # training_info: initialization / algorithm graphs
                for f2, _, v2 in _fields(value):
                    if f2 in (1, 2):
                        check.graph(v2, 1)
            elif field == 25 and wire == 2:  # model-local functions: their nodes
                for f2, _, v2 in _fields(value):
                    if f2 == 7:
                        check.node(v2, 1)
    except _RefusalError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, ZeroDivisionError, struct.error, OverflowError) as exc:
        raise ValueError(f"not a loadable ONNX model: {clean_error(str(exc))}") from None
    if not graphs:
        raise ValueError("not a loadable ONNX model: it has no graph")


# --- timing --------------------------------------------------------------------------------------


def _feeds(session: Any, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for inp in session.get_inputs():
        if not all(isinstance(d, int) and d > 0 for d in inp.shape):
            raise ValueError(f"input {inp.name!r} has no static shape {inp.shape}; export with a fixed input size")
        shape = [int(d) for d in inp.shape]
        if int(np.prod(shape)) > MAX_INPUT_ELEMENTS:
            raise ValueError(f"input {inp.name!r} of shape {shape} is too large")
        dtype = _ORT_TYPES.get(inp.type)
        if dtype is None:
            raise ValueError(f"input {inp.name!r} has unsupported type {inp.type}")
        feeds[inp.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def make_session(model: bytes | str, threads: int) -> Any:
    """An ONNX Runtime CPU session with ``threads`` intra-op threads (``ValueError`` if not ONNX)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad models
        if _out_of_memory(exc):
            raise MemoryError(clean_error(str(exc))) from exc
        raise ValueError(f"not a loadable ONNX model: {clean_error(str(exc) or type(exc).__name__)}") from exc


def measure_session(session: Any, runs: int = 50, warmup: int = 10,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Time ``session.run``: ``warmup`` untimed runs, then ``runs`` timed ones; returns the summary."""
    feeds = _feeds(session)
    for _ in range(warmup):
        session.run(None, feeds)
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
        if progress is not None:
            progress(i + 1, runs)
    return {**summarize_times(times), "runs": runs, "warmup": warmup}


_OOM_WORDS = ("failed to allocate", "bad_alloc", "cannot allocate memory", "out of memory", "memoryerror",
              "resource temporarily unavailable", "std::length_error")


def _out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or any(w in str(exc).lower() for w in _OOM_WORDS)


def _address_space_bytes() -> int:
    """This process's virtual size now (``VmSize``), 0 where ``/proc`` is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _child_main(argv: list[str]) -> int:
    """The measuring process: model on stdin, one JSON line on stdout; memory capped by ``RLIMIT_AS``.

    The cap is the address space in use after importing ONNX Runtime, plus the budget, plus
    32 MiB per intra-op thread (its stack and allocator slack).
    """
    runs, warmup, threads, budget = (int(a) for a in argv[:4])
    model = sys.stdin.buffer.read()

    def answer(payload: dict[str, Any]) -> int:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()
        return 0

    try:
        import onnxruntime  # noqa: F401 (imported before the cap, so the cap covers the model only)

        if budget > 0:
            import resource

            limit = _address_space_bytes() + budget + threads * 32 * 2**20
            hard = resource.getrlimit(resource.RLIMIT_AS)[1]
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        session = make_session(model, threads)
        del model
        return answer({"stats": measure_session(session, runs=runs, warmup=warmup)})
    except ValueError as exc:
        return answer({"error": str(exc)[:400], "memory": False})
    except BaseException as exc:  # noqa: BLE001 (whatever the runtime raises becomes one line for the client)
        if _out_of_memory(exc):
            return answer({"error": clean_error(str(exc) or type(exc).__name__), "memory": True})
        return answer({"error": f"the model failed to run: {clean_error(str(exc) or type(exc).__name__)}",
                       "memory": False})


# --- HTTP ----------------------------------------------------------------------------------------


class _Prefixed(io.RawIOBase):
    """A socket's bytes, after the ones already read with the headers."""

    def __init__(self, prefix: bytes, sock: socket.socket) -> None:
        self.prefix, self.sock = prefix, sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.prefix:
            n = min(len(buffer), len(self.prefix))
            buffer[:n] = self.prefix[:n]
            self.prefix = self.prefix[n:]
            return n
        return self.sock.recv_into(buffer)


class _Writer(io.RawIOBase):
    """Writes go whole to the socket (``sendall``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sock.sendall(data)
        return len(data)


class _Handler(BaseHTTPRequestHandler):
    """One request on one connection (always closed after the reply)."""

    server: AgentServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def __init__(self, conn: socket.socket, address: Any, server: AgentServer, prefix: bytes, inline: bool) -> None:
        self._prefix, self.inline = prefix, inline
        super().__init__(conn, address, server)  # type: ignore[arg-type]

    def setup(self) -> None:
        self.connection = self.request
        self.rfile = io.BufferedReader(_Prefixed(self._prefix, self.connection), 1 << 16)
        self.wfile = _Writer(self.connection)  # type: ignore[assignment]

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()

    def log_message(self, fmt: str, *args: Any) -> None:  # route http.server's access log to logging
        LOG.debug("%s %s", self.address_string(), fmt % args)

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 503:
                self.send_header("Retry-After", "5")
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            LOG.warning("%s: client went away before the reply", self.client_address[0])

    def _refuse(self, status: int, reason: str) -> None:
        LOG.warning("refused %s %s from %s: %d %s", self.command, urlparse(self.path).path, self.client_address[0],
                    status, reason)
        if status != 413 and not getattr(self, "_body_read", False) and not self.inline:
            self._drain()  # a client still sending its body would see a broken pipe, not the reason
        self._reply(status, {"error": reason, "status": status})

    def _read(self, length: int, deadline: float) -> Iterator[bytes]:
        """Chunks of the body until ``length`` bytes, end of stream or ``deadline`` (``TimeoutError``)."""
        left = length
        while left > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.connection.settimeout(remaining)
            chunk = self.rfile.read1(min(left, 1 << 20))  # one socket read at most: the deadline holds
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

    def _drain(self) -> None:
        """Read and drop a declared body (at most the size limit, for at most 5 s), so the client reads the reply."""
        self._body_read = True
        try:
            left = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return
        if not 0 < left <= self.server.max_bytes:
            return
        try:
            for _ in self._read(left, time.monotonic() + min(5.0, self.server.read_timeout_s)):
                pass
        except OSError:
            pass

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else ""
        if not given or not hmac.compare_digest(given.encode(), self.server.token.encode()):
            self._refuse(401, "missing or wrong token (send 'Authorization: Bearer TOKEN')")
            return False
        return True

    def do_GET(self) -> None:
        try:
            if urlparse(self.path).path != "/health":
                self._refuse(404, f"no such path {urlparse(self.path).path[:100]}; use GET /health or POST /measure")
                return
            if self._authorized():
                s = self.server
                self._reply(200, {"ok": True, "busy": s.busy.locked(), "device": s.facts, "max_bytes": s.max_bytes,
                                  "max_memory_bytes": s.max_memory_bytes, "limits": LIMITS})
        except Exception as exc:  # never let one request take the agent down
            LOG.exception("error answering GET")
            self._reply(500, {"error": f"internal error: {type(exc).__name__}"})

    def do_POST(self) -> None:
        try:
            self._post()
        except Exception as exc:
            LOG.exception("error answering POST")
            self._reply(500, {"error": f"internal error: {type(exc).__name__}"})

    def _post(self) -> None:
        url = urlparse(self.path)
        if url.path != "/measure":
            self._refuse(404, f"no such path {url.path[:100]}; use POST /measure")
            return
        if not self._authorized():
            return
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self._refuse(411, "Content-Length is required")
            return
        try:
            length = int(length_header)
        except ValueError:
            self._refuse(400, f"bad Content-Length {length_header[:40]!r}")
            return
        if length > self.server.max_bytes:
            self._refuse(413, f"model of {length} bytes is over the limit of {self.server.max_bytes} bytes")
            return
        if length <= 0:
            self._refuse(400, "empty body; send the ONNX model bytes")
            return
        try:
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            runs, warmup, threads = (int(query.get(k, d)) for k, d in (("runs", 50), ("warmup", 10), ("threads", 1)))
            check_settings(runs, warmup, threads)
        except ValueError as exc:
            self._refuse(400, f"bad run settings: {clean_error(str(exc), 200)}")
            return
        body = self._read_body(length)  # the whole body first, within one deadline; no lock held meanwhile
        if body is None:
            return
        try:
            check_model(body, self.server.max_memory_bytes)
        except ValueError as exc:
            self._refuse(400, str(exc))
            return
        if not self.server.busy.acquire(blocking=False):
            self._refuse(503, "busy: one measurement at a time; retry when the current one ends")
            return
        try:
            outcome = self.server.measure(body, runs, warmup, threads)
        finally:
            self.server.busy.release()
        if "error" in outcome:
            self._refuse(400, outcome["error"])
            return
        stats = outcome["stats"]
        LOG.info("measured %d-byte model for %s: median %.3f ms", length, self.client_address[0], stats["median_ms"])
        self._reply(200, {**stats, "threads": threads, "backend": "onnxruntime-cpu", "device": self.server.facts})

    def _read_body(self, length: int) -> bytes | None:
        self._body_read = True
        chunks: list[bytes] = []
        limit = self.server.read_timeout_s
        try:
            chunks = list(self._read(length, time.monotonic() + limit))
        except TimeoutError:
            LOG.warning("refused POST from %s: it did not send its %d-byte body within %.0f s; connection dropped",
                        self.client_address[0], length, limit)
            self.close_connection = True
            return None
        except OSError as exc:
            LOG.warning("refused POST from %s: connection dropped mid-body (%s)", self.client_address[0], exc)
            self.close_connection = True
            return None
        got = sum(len(c) for c in chunks)
        if got < length:
            LOG.warning("refused POST from %s: connection dropped after %d of %d bytes", self.client_address[0],
                        got, length)
            self.close_connection = True
            return None
        return b"".join(chunks)


class _Pending:
    """A connection whose request headers are still arriving."""

    __slots__ = ("sock", "address", "buf", "deadline")

    def __init__(self, sock: socket.socket, address: Any, deadline: float) -> None:
        self.sock, self.address, self.buf, self.deadline = sock, address, bytearray(), deadline


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
    sock.close()


class AgentServer:
    """The agent: a ``select`` loop for connections and headers, worker threads for measurements.

    Holds the token, the body size limit, the memory budget, the device facts and the busy lock.
    ``serve_forever()`` runs until ``shutdown()``; ``server_close()`` releases the port.
    """

    def __init__(self, address: tuple[str, int], token: str, max_bytes: int, read_timeout_s: float = 60.0,
                 max_memory_bytes: int = 1024 * 2**20, header_timeout_s: float = 10.0,
                 measure_timeout_s: float = 600.0, max_connections: int = 256) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.socket = socket.create_server(address, family=family, backlog=128)
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self.token = token
        self.max_bytes = max_bytes
        self.max_memory_bytes = max_memory_bytes
        self.read_timeout_s = read_timeout_s
        self.header_timeout_s = header_timeout_s
        self.measure_timeout_s = measure_timeout_s
        self.max_connections = _connection_cap(max_connections)
        self.busy = threading.Lock()
        self.workers = threading.BoundedSemaphore(MAX_WORKERS)
        self.facts = device_facts()
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._stopped = threading.Event()

    # the measuring child ------------------------------------------------------------------------

    def measure(self, model: bytes, runs: int, warmup: int, threads: int) -> dict[str, Any]:
        """Time ``model`` in a child process under the memory cap: ``{"stats": ...}`` or ``{"error": ...}``."""
        env = {**os.environ, "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        command = [sys.executable, os.path.abspath(__file__), _CHILD_FLAG, str(runs), str(warmup), str(threads),
                   str(self.max_memory_bytes)]
        budget = _gib(self.max_memory_bytes)
        try:
            done = subprocess.run(command, input=model, capture_output=True, timeout=self.measure_timeout_s,
                                  env=env, check=False)
        except subprocess.TimeoutExpired:
            return {"error": f"the measurement took longer than the agent's limit of {self.measure_timeout_s:.0f} s "
                             f"(--measure-timeout); use fewer runs or a smaller model"}
        except OSError as exc:
            LOG.error("could not start the measuring process: %s", exc)
            return {"error": "the agent could not start its measuring process; see its log"}
        lines = done.stdout.decode("utf-8", errors="replace").strip().splitlines()
        try:
            outcome = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            LOG.warning("measuring process ended with code %s: %s", done.returncode,
                        done.stderr.decode(errors="replace")[-2000:])
            if done.returncode < 0:
                return {"error": f"the model needs more memory than the agent allows ({budget}, --max-memory-mb): "
                                 f"the measuring process was stopped by signal {-done.returncode}"}
            return {"error": f"the measuring process failed (exit code {done.returncode}); see the agent's log"}
        if outcome.get("memory"):
            return {"error": f"the model needs more memory than the agent allows ({budget}, --max-memory-mb): "
                             f"{outcome['error']}"}
        return outcome

    # the select loop ----------------------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Accept connections and read headers until ``shutdown()``."""
        self._selector.register(self.socket, selectors.EVENT_READ, None)
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                oldest = next(iter(self._pending.values()), None)
                timeout = poll_interval if oldest is None else max(0.0, min(poll_interval, oldest.deadline - now))
                for key, _ in self._selector.select(timeout):
                    try:
                        if key.data is None:
                            self._accept()
                        else:
                            self._read_headers(key.data)
                    except Exception:  # (one connection's trouble never stops the loop)
                        LOG.exception("error serving a connection")
                        if key.data is not None:
                            self._drop(key.data)
                self._expire(time.monotonic())
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` (from another thread) and wait until it has returned."""
        self._stop.set()
        self._stopped.wait(timeout=10)

    def server_close(self) -> None:
        for pending in list(self._pending.values()):
            self._drop(pending)
        self._selector.close()
        self.socket.close()

    def _drop(self, pending: _Pending) -> None:
        self._pending.pop(pending.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(pending.sock)
        pending.sock.close()

    def _expire(self, now: float) -> None:
        while self._pending:
            pending = next(iter(self._pending.values()))
            if pending.deadline > now:
                return
            LOG.info("dropped %s: no complete request headers within %.0f s", pending.address[0],
                     self.header_timeout_s)
            self._drop(pending)

    def _accept(self) -> None:
        for _ in range(64):  # a bounded batch, then headers get their turn
            try:
                conn, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    if self._pending:  # out of descriptors: the slowest waiting client makes room
                        self._drop(next(iter(self._pending.values())))
                        continue
                    time.sleep(0.05)  # nothing to drop: wait instead of spinning on a readable socket
                    return
                LOG.warning("accept failed: %s", exc)
                return
            if len(self._pending) >= self.max_connections:
                dropped = next(iter(self._pending.values()))
                LOG.warning("%d connections wait for headers; dropped the oldest (%s)", len(self._pending),
                            dropped.address[0])
                self._drop(dropped)
            conn.setblocking(False)
            pending = _Pending(conn, address, time.monotonic() + self.header_timeout_s)
            self._pending[conn.fileno()] = pending
            self._selector.register(conn, selectors.EVENT_READ, pending)

    def _read_headers(self, pending: _Pending) -> None:
        try:
            data = pending.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(pending)
            return
        if not data:
            self._drop(pending)
            return
        pending.buf += data
        ends = [i for i in (pending.buf.find(b"\r\n\r\n"), pending.buf.find(b"\n\n")) if i >= 0]
        if (min(ends) if ends else len(pending.buf)) > MAX_HEADER_BYTES:
            LOG.warning("refused %s: request headers over %d bytes", pending.address[0], MAX_HEADER_BYTES)
            self._quick_reply(pending, 431, "request headers too large")
            return
        if not ends:
            return
        self._pending.pop(pending.sock.fileno(), None)
        self._selector.unregister(pending.sock)
        self._dispatch(pending)

    def _quick_reply(self, pending: _Pending, status: int, reason: str) -> None:
        """A short refusal written without blocking (it fits the socket buffer), then the connection closed."""
        body = json.dumps({"error": reason, "status": status}).encode()
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                + ("Retry-After: 5\r\n" if status == 503 else "") + "Connection: close\r\n\r\n")
        with contextlib.suppress(OSError):
            pending.sock.send(head.encode() + body)
        self._pending.pop(pending.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(pending.sock)
        _close(pending.sock)

    def _dispatch(self, pending: _Pending) -> None:
        sock, prefix = pending.sock, bytes(pending.buf)
        if not prefix.startswith(b"POST "):  # GET /health and every refusal: answered here, at once
            sock.settimeout(2.0)
            self._handle(sock, pending.address, prefix, inline=True)
            return
        if not self.workers.acquire(blocking=False):
            LOG.warning("refused POST from %s: all %d request slots are taken", pending.address[0], MAX_WORKERS)
            self._quick_reply(pending, 503, "busy: every request slot is taken; retry shortly")
            return
        sock.settimeout(self.read_timeout_s)

        def work() -> None:
            try:
                self._handle(sock, pending.address, prefix, inline=False)
            finally:
                self.workers.release()

        try:
            threading.Thread(target=work, name="agent-request", daemon=True).start()
        except RuntimeError:  # no thread to be had: refuse rather than stop the loop
            self.workers.release()
            LOG.warning("refused POST from %s: could not start a thread", pending.address[0])
            self._quick_reply(pending, 503, "busy: the agent could not start a worker; retry shortly")

    def _handle(self, sock: socket.socket, address: Any, prefix: bytes, inline: bool) -> None:
        try:
            _Handler(sock, address, self, prefix, inline)
        except Exception:  # the handler answers its own errors; this is a last guard for the loop
            LOG.exception("error handling a request from %s", address[0])
        finally:
            _close(sock)


def _connection_cap(wanted: int) -> int:
    """``wanted``, lowered to leave file descriptors for workers and measuring processes."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return wanted
    if soft == getattr(resource, "RLIM_INFINITY", -1) or soft <= 0:
        return wanted
    return max(4, min(wanted, soft - 32 - 4 * MAX_WORKERS))


def make_server(host: str = "127.0.0.1", port: int = 8765, token: str = "", max_mb: float = 64.0,
                read_timeout_s: float = 60.0, max_memory_mb: float = 1024.0, header_timeout_s: float = 10.0,
                measure_timeout_s: float = 600.0, max_connections: int = 256) -> AgentServer:
    """A ready (not yet serving) agent; ``ValueError`` without a token or with a non-positive limit."""
    if not token:
        raise ValueError("a token is required: --token SECRET (or the EXPLORER_AGENT_TOKEN variable)")
    for name, value in (("--max-mb", max_mb), ("--read-timeout", read_timeout_s), ("--max-memory-mb", max_memory_mb),
                        ("--header-timeout", header_timeout_s), ("--measure-timeout", measure_timeout_s),
                        ("--max-connections", max_connections)):
        if not value > 0:
            raise ValueError(f"{name} {value} must be positive")
    return AgentServer((host, port), token, int(max_mb * 2**20), read_timeout_s, int(max_memory_mb * 2**20),
                       header_timeout_s, measure_timeout_s, int(max_connections))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 = all)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default=os.environ.get("EXPLORER_AGENT_TOKEN", ""),
                        help="shared secret clients must send (default: $EXPLORER_AGENT_TOKEN)")
    parser.add_argument("--max-mb", type=float, default=64.0, help="largest model accepted, MiB (default 64)")
    parser.add_argument("--max-memory-mb", type=float, default=1024.0,
                        help="memory a measurement may use beyond ONNX Runtime itself, MiB (default 1024)")
    parser.add_argument("--read-timeout", type=float, default=60.0,
                        help="seconds a client has to send its whole model (default 60)")
    parser.add_argument("--header-timeout", type=float, default=10.0,
                        help="seconds a client has to send its request headers (default 10)")
    parser.add_argument("--measure-timeout", type=float, default=600.0,
                        help="seconds one measurement may take (default 600)")
    parser.add_argument("--max-connections", type=int, default=256,
                        help="connections that may wait for their headers at once (default 256)")


def serve(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns an exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = make_server(args.host, args.port, args.token, args.max_mb, getattr(args, "read_timeout", 60.0),
                         getattr(args, "max_memory_mb", 1024.0), getattr(args, "header_timeout", 10.0),
                         getattr(args, "measure_timeout", 600.0), getattr(args, "max_connections", 256))
    host, port = server.server_address[:2]
    LOG.info("latency agent on http://%s:%d (models up to %.0f MiB, measurements up to %.0f MiB of memory, "
             "device %s)", host, port, args.max_mb, server.max_memory_bytes / 2**20, server.facts["cpu"])
    print(f"serving on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [_CHILD_FLAG]:
        return _child_main(argv[1:])
    parser = argparse.ArgumentParser(description="Time ONNX models on this machine for the AttendNeXt Explorer.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return serve(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", flush=True)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
