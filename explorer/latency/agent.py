"""Latency agent: a small HTTP service that times ONNX models on the board it runs on.

Depends only on the standard library, numpy and onnxruntime, so on a Raspberry Pi it needs
``pip install onnxruntime numpy`` and this one file::

    python3 agent.py --token SECRET [--host 127.0.0.1] [--port 8765] [--max-mb 64]

(or ``explorer agent ...`` where the explorer is installed). The explorer also imports
``measure_session`` from here, so the board and the host time models the same way.

Protocol
--------
``GET /health`` (token required): ``{"ok": true, "device": {...}}``, measuring nothing.

``POST /measure?runs=50&warmup=10&threads=1`` (token required), body: the ONNX model bytes.
Answers ``200`` with ``{"median_ms", "p90_ms", "mean_ms", "cv", "runs", "warmup", "threads",
"backend", "device": {machine, cpu, cores, onnxruntime, python}}``.

Refusals (each logged with the client address; the agent never crashes on a bad request):
``401`` no or wrong token (``Authorization: Bearer TOKEN``; compared in constant time), ``413``
a declared body over the limit (refused before reading it), ``411`` no ``Content-Length``,
``400`` a body that is not a loadable ONNX model or absurd settings (runs outside 1..10000,
warm-up outside 0..1000, threads outside 1..256, inputs with no static shape), ``503`` with
``Retry-After`` when a measurement is already running (one at a time: a second request is
refused at once, never queued behind minutes of timing), ``404`` an unknown path. A client that
stalls mid-body is dropped after ``--read-timeout`` seconds.

Timing: ``warmup`` untimed runs, then ``runs`` timed runs of ``session.run`` on a fixed random
input; ``median``, ``p90`` (nearest rank), ``cv = std / mean``.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import platform
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlparse

import numpy as np

__all__ = ["LIMITS", "device_facts", "make_server", "measure_session", "main", "summarize_times"]

LOG = logging.getLogger("explorer.agent")

#: bounds on run settings: (lowest, highest)
LIMITS = {"runs": (1, 10_000), "warmup": (0, 1_000), "threads": (1, 256)}
MAX_INPUT_ELEMENTS = 64 * 2**20  # refuse models whose input alone would need > 256 MiB of fp32

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
    """What the timing ran on: machine, CPU model, core count, ONNX Runtime and Python versions."""
    import onnxruntime as ort

    return {"machine": platform.machine(), "cpu": _cpu_model(), "cores": os.cpu_count(),
            "onnxruntime": ort.__version__, "python": platform.python_version(), "node": platform.node()}


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


def _feeds(session: Any, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else None for d in inp.shape]
        if any(d is None for d in shape):
            raise ValueError(f"input {inp.name!r} has no static shape {inp.shape}; export with a fixed input size")
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
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"not a loadable ONNX model: {first[:300]}") from exc


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


class _Handler(BaseHTTPRequestHandler):
    server: "AgentServer"
    protocol_version = "HTTP/1.1"

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
            if status >= 400:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            LOG.warning("%s: client went away before the reply", self.client_address[0])

    def _refuse(self, status: int, reason: str) -> None:
        LOG.warning("refused %s %s from %s: %d %s", self.command, self.path, self.client_address[0], status, reason)
        if status != 413 and not getattr(self, "_body_read", False):
            self._drain()  # a client still sending its body would see a broken pipe, not the reason
        self._reply(status, {"error": reason, "status": status})

    def _drain(self) -> None:
        """Read and drop a declared body of at most the size limit, so the client reads the reply."""
        try:
            left = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return
        if not 0 < left <= self.server.max_bytes:
            return
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass
        self._body_read = True

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else ""
        if not given or not hmac.compare_digest(given.encode(), self.server.token.encode()):
            self._refuse(401, "missing or wrong token (send 'Authorization: Bearer TOKEN')")
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        try:
            if urlparse(self.path).path != "/health":
                self._refuse(404, f"no such path {urlparse(self.path).path}; use GET /health or POST /measure")
                return
            if self._authorized():
                self._reply(200, {"ok": True, "busy": self.server.busy.locked(), "device": self.server.facts,
                                  "max_bytes": self.server.max_bytes, "limits": LIMITS})
        except Exception as exc:  # never let one request take the agent down
            LOG.exception("error answering GET")
            self._reply(500, {"error": f"internal error: {type(exc).__name__}"})

    def do_POST(self) -> None:  # noqa: N802
        try:
            self._post()
        except Exception as exc:
            LOG.exception("error answering POST")
            self._reply(500, {"error": f"internal error: {type(exc).__name__}"})

    def _post(self) -> None:
        url = urlparse(self.path)
        if url.path != "/measure":
            self._refuse(404, f"no such path {url.path}; use POST /measure")
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
            self._refuse(400, f"bad Content-Length {length_header!r}")
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
            self._refuse(400, f"bad run settings: {exc}")
            return
        if not self.server.busy.acquire(blocking=False):
            self._refuse(503, "busy: one measurement at a time; retry when the current one ends")
            return
        try:
            body = self._read_body(length)
            if body is None:
                return
            try:
                session = make_session(body, threads)
                stats = measure_session(session, runs=runs, warmup=warmup)
            except ValueError as exc:
                self._refuse(400, str(exc))
                return
            except Exception as exc:  # a model that loads but fails to run
                self._refuse(400, f"the model failed to run: {str(exc).splitlines()[0][:300] if str(exc) else exc!r}")
                return
        finally:
            self.server.busy.release()
        LOG.info("measured %d-byte model for %s: median %.3f ms", length, self.client_address[0], stats["median_ms"])
        self._reply(200, {**stats, "threads": threads, "backend": "onnxruntime-cpu", "device": self.server.facts})

    def _read_body(self, length: int) -> bytes | None:
        self._body_read = True
        chunks, left = [], length
        while left > 0:
            try:
                chunk = self.rfile.read(min(left, 1 << 20))
            except (ConnectionResetError, TimeoutError, OSError) as exc:
                LOG.warning("refused POST from %s: connection dropped mid-body (%s)", self.client_address[0], exc)
                self.close_connection = True
                return None
            if not chunk:
                LOG.warning("refused POST from %s: connection dropped after %d of %d bytes",
                            self.client_address[0], length - left, length)
                self.close_connection = True
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


class AgentServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` holding the token, the size limit, the device facts and the busy lock."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], token: str, max_bytes: int, read_timeout_s: float = 60.0) -> None:
        super().__init__(address, _Handler)
        self.token = token
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s
        self.busy = threading.Lock()
        self.facts = device_facts()

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.read_timeout_s)  # a stalled client cannot hold the agent for ever
        super().finish_request(request, client_address)


def make_server(host: str = "127.0.0.1", port: int = 8765, token: str = "", max_mb: float = 64.0,
                read_timeout_s: float = 60.0) -> AgentServer:
    """A ready (not yet serving) agent; ``ValueError`` without a token."""
    if not token:
        raise ValueError("a token is required: --token SECRET (or the EXPLORER_AGENT_TOKEN variable)")
    return AgentServer((host, port), token, int(max_mb * 2**20), read_timeout_s)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 = all)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default=os.environ.get("EXPLORER_AGENT_TOKEN", ""),
                        help="shared secret clients must send (default: $EXPLORER_AGENT_TOKEN)")
    parser.add_argument("--max-mb", type=float, default=64.0, help="largest model accepted, MiB (default 64)")
    parser.add_argument("--read-timeout", type=float, default=60.0,
                        help="seconds a client may stall while sending (default 60)")


def serve(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns an exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = make_server(args.host, args.port, args.token, args.max_mb, getattr(args, "read_timeout", 60.0))
    host, port = server.server_address[:2]
    LOG.info("latency agent on http://%s:%d (max %.0f MiB, device %s)", host, port, args.max_mb,
             server.facts["cpu"])
    print(f"serving on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
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
