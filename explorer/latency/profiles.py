"""Device profiles: the physical roofline of a CPU plus the factors calibration fits.

A profile is YAML in ``assets/devices/NAME.yaml`` (shipped) or a user file (fitted profiles are
saved under ``./runs/devices/`` by default and found before shipped ones). Fields:

- ``peak_gflops``: fp32 FLOP/s of the cores a single-threaded run uses (FLOP = 2 MAC);
- ``bandwidth_gbs``: sustained memory bandwidth, GB/s;
- ``compute_scale`` (per layer kind) and ``memory_scale``: multipliers of the ideal times
  ``2·MACs / peak`` and ``bytes / bandwidth`` (1 = the roofline; 5 = a fifth of peak);
- ``overhead_us``: fixed cost per compute layer (dispatch, threading), ``elementwise_overhead_us``
  per elementwise layer, ``const_ms`` per inference.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..presets import assets_dir

__all__ = ["KINDS", "DeviceProfile", "list_profiles", "load_profile", "profile_dirs", "save_profile", "user_dir"]

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

    def scale(self, kind: str) -> float:
        return float(self.compute_scale.get(kind, 1.0))


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
