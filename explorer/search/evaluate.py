"""One candidate's evaluation as a pure function of plain data: ``evaluate_candidate(job) -> result``.

A job (:class:`EvalJob`, or its ``model_dump()``) names a design (its mapping), a fidelity (training
steps; 0 = the free signals only), the constraints, the latency settings and the proxy task. The
function reads nothing else and writes nothing: no store, no globals but caches, so that an executor
may run it here, in another process or on another machine (a Ray worker) and get the same answer.

In order, each step only if the design is still feasible (``full`` computes latency regardless):

1. the free signals: ``analyze`` (params, MACs, peak activations; the analysis caches every unit, so a
   mutated child costs only its changed units) and the budget and best-practice checks;
2. latency: given in the job (a cached measurement, or an earlier rung's), else predicted on the
   device profile (per unit, each unit's terms cached like its counts: ``predict_by_units``),
   measured here in ONNX Runtime, or measured on the board; then the latency budget;
3. training on the proxy task for ``fidelity_steps`` steps (a fresh run from the seed: each rung
   trains from scratch with its own cosine schedule), giving the validation accuracy.

A promotion to a longer rung passes ``known`` (the free signals of step 1 and 2), so only step 3 runs.
A design that does not fit the proxy input, or whose training fails, is infeasible with that reason.
A board that cannot be reached raises ``RemoteError``: the search stops rather than mark every design.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..analysis import analyze
from ..data import DataSplit, load_dataset
from ..design import load_design
from ..latency.profiles import DeviceProfile, load_profile
from ..spec import ArchitectureSpec, SpecError
from .constraints import Constraints, latency_violations, violations
from .task import LatencySettings, ProxyTask

__all__ = ["EvalJob", "EvalResult", "KnownSignals", "evaluate_candidate", "proxy_data"]


class KnownSignals(BaseModel):
    """The free signals of a design, already computed (a promotion carries them)."""

    params: int
    macs: int
    peak_activation_bytes: int
    latency_ms: float | None = None


class EvalJob(BaseModel):
    """Everything one evaluation needs, as plain data."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=0, description="the evaluation's number in its search")
    spec: dict[str, Any] = Field(description="the design as a mapping (``ArchitectureSpec.to_dict()``)")
    fidelity_steps: int = Field(0, ge=0, description="proxy-training steps; 0: the free signals only")
    constraints: Constraints = Field(default_factory=Constraints)
    latency: LatencySettings | None = Field(None, description="None: latency is neither objective nor budget")
    latency_ms: float | None = Field(None, description="a known latency (cache): not measured again")
    known: KnownSignals | None = None
    task: ProxyTask = Field(default_factory=ProxyTask)
    train_seed: int = Field(0, ge=0, le=2**31 - 1)
    full: bool = Field(False, description="compute latency even for a design that breaks a budget (the start)")
    train_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where proxy training runs (auto: CUDA if visible); a Ray task sets it from its GPUs")


class EvalResult(BaseModel):
    """What one evaluation found, as plain data."""

    seq: int
    params: int
    macs: int
    peak_activation_bytes: int
    latency_ms: float | None = None
    latency_measurement: dict[str, Any] | None = Field(None, description="a fresh measurement, for the cache")
    accuracy: float | None = None
    fidelity_steps: int = 0
    feasible: bool
    reasons: list[str] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict)
    worker: str = ""


@lru_cache(maxsize=2)
def proxy_data(dataset: str, input_size: int) -> DataSplit:
    """The proxy task's data, loaded once per process."""
    return load_dataset(dataset, input_size)


@lru_cache(maxsize=8)
def _profile(device: str) -> DeviceProfile:
    return load_profile(device)


def _latency(spec: ArchitectureSpec, settings: LatencySettings) -> tuple[float, dict[str, Any] | None]:
    """(milliseconds, the measurement to cache or None for a prediction)."""
    if settings.mode == "predict":  # a sum of per-unit terms: a child exports only the units it changed
        from ..latency.predictor import predict_by_units

        return predict_by_units(spec, _profile(settings.device)), None
    if settings.mode == "local":
        from ..latency.measure import measure_local

        stats = measure_local(spec, runs=settings.runs, warmup=settings.warmup, threads=settings.threads)
    else:
        from ..export import onnx_bytes
        from ..latency.client import measure_remote

        stats = measure_remote(str(settings.url), settings.token, onnx_bytes(spec), runs=settings.runs,
                               warmup=settings.warmup, threads=settings.threads)
    facts = stats.get("device")  # the agent's device facts; the cache key names the place instead
    return float(stats["median_ms"]), {**stats, "device_facts": facts, **settings.cache_key()}


def _accuracy(spec: ArchitectureSpec, job: EvalJob) -> tuple[float | None, str | None]:
    """(validation accuracy, None) after ``job.fidelity_steps`` of proxy training, or (None, the reason)."""
    from ..train import make_config, train

    task = job.task
    config = make_config(dataset=task.dataset, input_size=task.input_size, steps=job.fidelity_steps,
                         batch_size=task.batch_size, seed=job.train_seed, eval_every=0, device=job.train_device,
                         log_every=min(10, job.fidelity_steps))
    try:
        result = train(spec, config, data=proxy_data(task.dataset, task.input_size))
    except SpecError as exc:
        return None, f"does not fit the proxy task ({task.input_size}×{task.input_size}): {exc}"
    except (ValueError, RuntimeError) as exc:
        return None, f"proxy training failed: {str(exc).splitlines()[0][:200]}"
    return result.val_accuracy, None


def evaluate_candidate(job: EvalJob | Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate one candidate (see the module docstring); ``EvalResult.model_dump()``."""
    job = job if isinstance(job, EvalJob) else EvalJob.model_validate(job)
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    spec = load_design(job.spec)
    latency_ms, measurement = job.latency_ms, None
    if job.known is not None:
        params, macs, peak = job.known.params, job.known.macs, job.known.peak_activation_bytes
        latency_ms = job.known.latency_ms if job.known.latency_ms is not None else latency_ms
        reasons: list[str] = []
    else:
        analysis = analyze(spec)
        params, macs, peak = analysis.params, analysis.macs, analysis.peak_activation_bytes
        reasons = violations(spec, analysis, job.constraints)
        seconds["analysis"] = time.perf_counter() - t0
        if job.latency is not None and latency_ms is None and (job.full or not reasons):
            t = time.perf_counter()
            latency_ms, measurement = _latency(spec, job.latency)
            seconds["latency"] = time.perf_counter() - t
        if job.latency is not None:
            reasons += latency_violations(latency_ms, job.constraints, job.latency.describe())
    accuracy = None
    if job.fidelity_steps > 0 and not reasons:
        t = time.perf_counter()
        accuracy, why = _accuracy(spec, job)
        seconds["train"] = time.perf_counter() - t
        if why:
            reasons.append(why)
    seconds["total"] = time.perf_counter() - t0
    return EvalResult(
        seq=job.seq, params=params, macs=macs, peak_activation_bytes=peak, latency_ms=latency_ms,
        latency_measurement=measurement, accuracy=accuracy, fidelity_steps=job.fidelity_steps, feasible=not reasons,
        reasons=reasons, seconds={k: round(v, 4) for k, v in seconds.items()},
        worker=f"{socket.gethostname()}:{os.getpid()}",
    ).model_dump()
