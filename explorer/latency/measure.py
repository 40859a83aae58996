"""Local latency: the design exported to ONNX and timed in ONNX Runtime on this CPU.

Times are measured exactly as the board agent measures them (``agent.measure_session``):
warm-up runs, then ``runs`` timed runs of batch 1; median, p90 and coefficient of variation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..export import onnx_bytes
from ..spec import ArchitectureSpec
from .agent import check_settings, device_facts, make_session, measure_session

__all__ = ["measure_local", "measure_onnx"]


def measure_onnx(model: bytes, runs: int = 50, warmup: int = 10, threads: int = 1,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Time an ONNX model on this CPU; the agent's JSON plus ``backend`` and ``device``."""
    check_settings(runs, warmup, threads)
    stats = measure_session(make_session(model, threads), runs=runs, warmup=warmup, progress=progress)
    return {**stats, "threads": threads, "backend": "onnxruntime-cpu", "device": device_facts()}


def measure_local(spec: ArchitectureSpec, runs: int = 50, warmup: int = 10, threads: int = 1,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Export ``spec`` (reparameterised, batch 1, its input size) and time it locally."""
    return measure_onnx(onnx_bytes(spec), runs=runs, warmup=warmup, threads=threads, progress=progress)
