"""Device profiles: the physical roofline of a CPU plus the factors calibration fits.

A profile is YAML in ``assets/devices/NAME.yaml`` (shipped) or a user file (fitted profiles are
saved under ``./runs/devices/`` by default and found before shipped ones). Fields:

- ``peak_gflops``: fp32 FLOP/s of the cores a single-threaded run uses (FLOP = 2 MAC);
- ``bandwidth_gbs``: sustained memory bandwidth, GB/s;
- ``compute_scale`` (per layer kind) and ``memory_scale``: multipliers of the ideal times
  ``2·MACs / peak`` and ``bytes / bandwidth`` (1 = the roofline; 5 = a fifth of peak);
- ``overhead_us``: fixed cost per compute layer (dispatch, threading), ``elementwise_overhead_us``
  per elementwise layer, ``const_ms`` per inference;
- ``int8`` (optional): the same factors for the int8 graph (ONNX Runtime static QDQ quantization),
  with ``peak_gops`` (int8 operations per second, 2 per multiply-accumulate) in place of
  ``peak_gflops``, and a ``source`` saying where they come from (fitted by ``explorer calibrate
  DEVICE --int8``, or reconstructed). The int8 predictor runs the same per-layer formula on the
  same layers with 1 byte per element instead of 4 (``DeviceProfile.int8_profile``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..presets import assets_dir

__all__ = ["KINDS", "DeviceProfile", "Int8Factors", "list_profiles", "load_profile", "profile_dirs", "save_profile",
           "user_dir"]

#: layer kinds the predictor separates (see ``predictor.layer_profile``)
KINDS = ("conv", "pointwise", "depthwise", "linear", "attention")


class Calibration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: str
    samples: int
    held_out: int
    within_10pct: float
    median_abs_error_pct: float
    threads: int
    source: str


class Int8Factors(BaseModel):
    """The predictor's factors for the int8 graph of a design (see ``DeviceProfile.int8_profile``)."""

    model_config = ConfigDict(extra="forbid")

    peak_gops: float = Field(gt=0, le=1e6)
    compute_scale: dict[str, float] = Field(default_factory=lambda: {k: 1.0 for k in KINDS})
    memory_scale: float = Field(1.0, ge=0)
    elementwise_scale: float = Field(1.0, ge=0)
    overhead_us: float = Field(5.0, ge=0)
    elementwise_overhead_us: float = Field(1.0, ge=0)
    const_ms: float = Field(0.0, ge=0)
    source: str = ""
    calibration: Calibration | None = None


class DeviceProfile(BaseModel):
    """A CPU's roofline and the per-kind factors that turn it into latency predictions."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    peak_gflops: float = Field(gt=0, le=1e6)
    bandwidth_gbs: float = Field(gt=0, le=1e5)
    compute_scale: dict[str, float] = Field(default_factory=lambda: {k: 1.0 for k in KINDS})
    memory_scale: float = Field(1.0, ge=0)
    elementwise_scale: float = Field(1.0, ge=0)
    overhead_us: float = Field(5.0, ge=0)
    elementwise_overhead_us: float = Field(1.0, ge=0)
    const_ms: float = Field(0.0, ge=0)
    sources: list[str] = Field(default_factory=list)
    calibration: Calibration | None = None
    int8: Int8Factors | None = None

    def scale(self, kind: str) -> float:
        return float(self.compute_scale.get(kind, 1.0))

    def int8_profile(self) -> DeviceProfile:
        """The int8 predictor as a profile of its own: the ``int8`` factors, ``peak_gops`` as the peak,
        and 4× the bandwidth (a layer's bytes are counted at 4 per element; int8 moves 1)."""
        if self.int8 is None:
            raise ValueError(f"device profile {self.name!r} has no int8 section; fit one with "
                             f"`explorer calibrate {self.name} --int8`")
        q = self.int8
        return self.model_copy(update={
            "description": f"{self.description} (int8)", "peak_gflops": q.peak_gops,
            "bandwidth_gbs": 4 * self.bandwidth_gbs, "compute_scale": dict(q.compute_scale),
            "memory_scale": q.memory_scale, "elementwise_scale": q.elementwise_scale, "overhead_us": q.overhead_us,
            "elementwise_overhead_us": q.elementwise_overhead_us, "const_ms": q.const_ms,
            "calibration": q.calibration, "int8": None})

    def with_int8(self, fitted: DeviceProfile, source: str) -> DeviceProfile:
        """This profile with its ``int8`` section taken from ``fitted`` (an ``int8_profile()``, refitted)."""
        peak = self.int8.peak_gops if self.int8 is not None else fitted.peak_gflops
        return self.model_copy(update={"int8": Int8Factors(
            peak_gops=peak, compute_scale=dict(fitted.compute_scale), memory_scale=fitted.memory_scale,
            elementwise_scale=fitted.elementwise_scale, overhead_us=fitted.overhead_us,
            elementwise_overhead_us=fitted.elementwise_overhead_us, const_ms=fitted.const_ms, source=source,
            calibration=fitted.calibration)})


def user_dir() -> Path:
    """Where fitted profiles go: ``$EXPLORER_DEVICES`` or ``./runs/devices``."""
    return Path(os.environ.get("EXPLORER_DEVICES", "runs/devices"))


def profile_dirs() -> list[Path]:
    return [user_dir(), assets_dir() / "devices"]


def list_profiles() -> list[str]:
    """Names of every profile, fitted (user) and shipped."""
    names: set[str] = set()
    for folder in profile_dirs():
        if folder.is_dir():
            names |= {p.stem for p in folder.glob("*.yaml")}
    return sorted(names)


def _read(path: Path) -> DeviceProfile:
    if path.stat().st_size > 1 << 20:
        raise ValueError(f"{path}: a device profile is at most 1 MiB")
    try:
        data: Any = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{path}: not a readable device profile (YAML: {problem}); fix or remove the file") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a device profile is a mapping of fields")
    try:
        return DeviceProfile(**data)
    except (ValidationError, TypeError) as exc:
        raise ValueError(f"{path}: {str(exc).splitlines()[0]}; {str(exc).splitlines()[1:3]}") from None


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """A profile by name (fitted first, then shipped) or by YAML path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return _read(path)
    for folder in profile_dirs():
        candidate = folder / f"{name_or_path}.yaml"
        if candidate.is_file():
            return _read(candidate)
    raise FileNotFoundError(f"no device profile {name_or_path!r}; known: {', '.join(list_profiles()) or 'none'}")


def save_profile(profile: DeviceProfile, path: Path | None = None) -> Path:
    """Write ``profile`` as YAML (default ``user_dir()/NAME.yaml``); returns the path."""
    path = Path(path) if path else user_dir() / f"{profile.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# fitted by `explorer calibrate` on {datetime.now(UTC):%Y-%m-%d %H:%M UTC}\n"
    path.write_text(header + yaml.safe_dump(profile.model_dump(), sort_keys=False))
    return path
