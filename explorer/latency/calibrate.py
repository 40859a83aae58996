"""Calibrate a device profile: measure random designs, fit the predictor's factors, report held-out error.

1. sample ``n`` distinct valid designs (``explorer.mutate.random_architectures``: presets moved
   by random mutations) at one input size;
2. measure each (locally in ONNX Runtime, or on a board through its agent), in ``rounds``
   interleaved passes keeping each design's lowest median (robust to a busy machine);
3. split them (seeded) into a fit set and a held-out set (``holdout`` fraction);
4. fit ``y ≈ F c`` with ``c ≥ 0``, where row ``F_i`` is ``predictor.feature_vector`` of design
   ``i`` (ideal seconds per term) and ``y_i`` its measured seconds, by non-negative least squares
   on *relative* errors (each row divided by ``y_i``, so a 2 ms and a 40 ms design weigh alike);
5. report, on the held-out designs, the fraction predicted within ±10 % and the median absolute
   percentage error; the fitted profile keeps that report in its ``calibration`` field.

With ``int8=True`` each exported design is quantized (``op_profile.quantize_for_timing``: static
QDQ, calibrated on random inputs, which is right for timing) before it is measured, and the fit
is of the profile's ``int8`` section (``DeviceProfile.int8_profile``: the same formula on the same
layers, int8 peak and 1 byte per element); the rest of the profile is kept as it was.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pydantic import BaseModel

from ..export import onnx_bytes
from ..mutate import random_architectures
from ..spec import ArchitectureSpec
from .measure import measure_onnx
from .predictor import FEATURES, feature_vector, layer_profile, predict
from .profiles import KINDS, Calibration, DeviceProfile

__all__ = ["CalibrationResult", "Sample", "calibrate", "fit_profile", "measure_samples", "nnls", "profile_error"]

#: (done, total, message) progress reporter
Progress = Callable[[int, int, str], None]


class Sample(BaseModel):
    name: str
    spec_json: str
    measured_ms: float


class CalibrationResult(BaseModel):
    profile: DeviceProfile
    fit: list[Sample]
    held_out: list[Sample]
    predicted_ms: list[float]  # for the held-out samples, in order
    within_10pct: float
    median_abs_error_pct: float


def nnls(a: np.ndarray, b: np.ndarray, max_iter: int = 500) -> np.ndarray:
    """Non-negative least squares, ``argmin ||a x - b||₂ subject to x ≥ 0`` (Lawson–Hanson 1974)."""
    m, n = a.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    w = a.T @ (b - a @ x)
    tol = 10 * np.finfo(float).eps * np.linalg.norm(a, 1) * max(m, n)
    for _ in range(max_iter):
        if passive.all() or w[~passive].max(initial=-np.inf) <= tol:
            break
        j = int(np.argmax(np.where(passive, -np.inf, w)))
        passive[j] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            mask = passive & (z <= 0)
            alpha = np.min(x[mask] / (x[mask] - z[mask]))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
        w = a.T @ (b - a @ x)
    return x


def measure_samples(specs: list[ArchitectureSpec], measure: Callable[[bytes], dict[str, Any]],
                    progress: Progress | None = None, rounds: int = 2) -> list[Sample]:
    """Export and measure each design with ``measure(onnx_bytes) -> {"median_ms": ...}``.

    ``rounds`` passes over all designs, keeping each design's lowest median: a pass disturbed by
    another process on the machine then costs nothing (timing noise only ever adds time).
    """
    models = []
    for spec in specs:
        data = onnx_bytes(spec)
        layer_profile(spec, data)  # the fit needs the graph's layers: read them from this export
        models.append(data)
    best = [float("inf")] * len(specs)
    total = rounds * len(specs)
    for r in range(rounds):
        for i, (spec, data) in enumerate(zip(specs, models, strict=True)):
            if progress:
                progress(r * len(specs) + i, total, f"measuring {spec.name} (round {r + 1})")
            best[i] = min(best[i], float(measure(data)["median_ms"]))
    if progress:
        progress(total, total, "measured")
    return [Sample(name=s.name, spec_json=s.model_dump_json(), measured_ms=t) for s, t in zip(specs, best, strict=True)]


def fit_profile(base: DeviceProfile, samples: list[Sample]) -> DeviceProfile:
    """``base`` with its factors fitted by relative non-negative least squares to ``samples``."""
    specs = [ArchitectureSpec.model_validate_json(s.spec_json) for s in samples]
    f = np.stack([feature_vector(spec, base) for spec in specs])
    y = np.array([s.measured_ms / 1e3 for s in samples])
    used = np.asarray(f.any(axis=0), dtype=bool)  # a kind no design has (e.g. attention) keeps its prior factor
    coef = np.zeros(len(FEATURES))
    coef[used] = nnls(f[:, used] / y[:, None], np.ones(len(y)))
    prior = {f"compute_{k}": base.scale(k) for k in KINDS}
    scales = {k: float(coef[i]) if used[i] else prior[f"compute_{k}"] for i, k in enumerate(KINDS)}
    i = len(KINDS)
    return base.model_copy(update={
        "compute_scale": scales,
        "memory_scale": float(coef[i]) if used[i] else base.memory_scale,
        "elementwise_scale": float(coef[i + 1]) if used[i + 1] else base.elementwise_scale,
        "overhead_us": float(coef[i + 2]) if used[i + 2] else base.overhead_us,
        "elementwise_overhead_us": float(coef[i + 3]) if used[i + 3] else base.elementwise_overhead_us,
        "const_ms": float(coef[i + 4]),
    })


def profile_error(profile: DeviceProfile, samples: list[Sample]) -> tuple[list[float], float, float]:
    """How well ``profile`` predicts measured ``samples``: predictions (ms), fraction within ±10 %,
    median absolute percentage error (100 · median_i |p_i − y_i| / y_i)."""
    predicted = [predict(ArchitectureSpec.model_validate_json(s.spec_json), profile) for s in samples]
    errors = np.array([abs(p - s.measured_ms) / s.measured_ms for p, s in zip(predicted, samples, strict=True)])
    return predicted, float((errors <= 0.10).mean()), float(np.median(errors) * 100)


def calibrate(
    base: DeviceProfile,
    measure: Callable[[bytes], dict[str, Any]],
    n: int = 30,
    input_size: int = 160,
    holdout: float = 0.33,
    seed: int = 0,
    steps: int = 3,
    threads: int = 1,
    source: str = "local onnxruntime",
    progress: Progress | None = None,
    rounds: int = 2,
    int8: bool = False,
) -> CalibrationResult:
    """Measure ``n`` random designs, fit on ``1 - holdout`` of them, report the error on the rest.

    ``int8``: measure the designs' int8 graphs and fit ``base.int8`` (the returned profile is
    ``base`` with that section replaced; ``base`` needs an ``int8`` section to start from).
    """
    if n < 4:
        raise ValueError(f"calibration needs at least 4 designs (20 or more for a useful fit), got {n}")
    full = base
    if int8:
        from .op_profile import quantize_for_timing

        base = base.int8_profile()  # ValueError (one line) when the profile has no int8 section
        fp32_measure = measure
        quantized: dict[bytes, bytes] = {}  # each design is quantized once, measured ``rounds`` times

        def measure(model: bytes) -> dict[str, Any]:
            if model not in quantized:
                quantized[model] = quantize_for_timing(model)
            return fp32_measure(quantized[model])
    specs = random_architectures(n, seed=seed, input_size=input_size, steps=steps)
    samples = measure_samples(specs, measure, progress, rounds)
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    n_out = max(1, round(holdout * len(samples)))
    held = [samples[i] for i in order[:n_out]]
    fit = [samples[i] for i in order[n_out:]]
    profile = fit_profile(base, fit)
    predicted, within, mape = profile_error(profile, held)
    profile.calibration = Calibration(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), samples=len(fit), held_out=len(held),
        within_10pct=within, median_abs_error_pct=mape, threads=threads, source=source)
    if int8:
        profile = full.with_int8(profile, f"fitted by `explorer calibrate --int8` on {len(fit)} random designs, "
                                          f"{source}, static QDQ int8 calibrated on random inputs")
    return CalibrationResult(profile=profile, fit=fit, held_out=held, predicted_ms=predicted, within_10pct=within,
                             median_abs_error_pct=mape)


def local_measure(runs: int = 30, warmup: int = 5, threads: int = 1) -> Callable[[bytes], dict[str, Any]]:
    """A ``measure`` for ``calibrate`` timing on this CPU."""
    return lambda model: measure_onnx(model, runs=runs, warmup=warmup, threads=threads)
