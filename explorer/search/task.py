"""Where a search's numbers come from: the proxy task (accuracy) and the latency settings.

:class:`ProxyTask` is the ONE place for the accuracy signal's defaults: the dataset, the input size
and the training steps of the cheapest rung, and the successive-halving ladder built on it
(rung ``k`` trains ``steps · ηᵏ`` steps, ``k < rungs``). The command line and the UI read their
defaults from it. The defaults come from ``benchmarks/signal_quality.py`` (its table is in
``benchmarks/RESULTS.md``): on 16 designs spanning a 21x latency range, 16 steps of training on the
procedural ``shapes`` set at 32x32 ranked the designs best (Kendall tau_b +0.73 against a 2-seed,
128-step reference, whose own seed-to-seed tau_b is +0.70); ``digits`` saturates (half the presets
reach >= 95 %), 64x64 ranked worse for more cost, and every zero-cost proxy ranked the wrong way.

:class:`LatencySettings` says how the latency objective (and the latency budget) is obtained:
predicted on a device profile (free, the default), measured here in ONNX Runtime, or measured on a
board through the agent. The token is never stored (:meth:`LatencySettings.public`).
"""

from __future__ import annotations

import socket
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["SETTINGS_KEYS", "LatencySettings", "ProxyTask"]

#: what makes two latency measurements of one design comparable (``LatencySettings.cache_key``)
SETTINGS_KEYS = ("backend", "device", "threads", "runs", "warmup")

MAX_TRAIN_STEPS = 1_000_000  # as explorer.train.TrainConfig allows


class ProxyTask(BaseModel):
    """The proxy task that judges accuracy, and its fidelity ladder (successive halving)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field("shapes", min_length=1, description="digits, shapes or a dataset directory")
    input_size: int = Field(32, ge=8, le=512, description="square input of the proxy training")
    steps: int = Field(16, ge=1, le=MAX_TRAIN_STEPS, description="training steps of rung 0 (the cheapest)")
    eta: int = Field(3, ge=2, le=10, description="successive halving: keep the top 1/eta, train eta times longer")
    rungs: int = Field(3, ge=1, le=6, description="fidelities: steps, eta·steps, eta²·steps, …")
    batch_size: int = Field(64, ge=2, le=4096)

    @model_validator(mode="after")
    def _ladder_fits(self) -> ProxyTask:
        top = self.steps * self.eta ** (self.rungs - 1)
        if top > MAX_TRAIN_STEPS:
            raise ValueError(f"the top rung would train {top} steps (steps {self.steps} × eta {self.eta}^"
                             f"{self.rungs - 1}); keep it within {MAX_TRAIN_STEPS}: fewer steps or rungs")
        return self

    def rung_steps(self) -> list[int]:
        """Training steps of each rung: ``[steps, eta·steps, …]`` (``rungs`` entries)."""
        return [self.steps * self.eta**k for k in range(self.rungs)]


class LatencySettings(BaseModel):
    """How latency is obtained: ``predict`` on ``device`` (a profile), ``local`` (ONNX Runtime here) or
    ``remote`` (the agent at ``url``, with ``token``). Measurements: ``runs`` timed runs after ``warmup``,
    batch 1, ``threads`` threads; the median counts."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["predict", "local", "remote"] = "predict"
    device: str = Field("host", min_length=1, description="device profile of a prediction")
    url: str | None = None
    token: str = Field("", repr=False)
    runs: int = Field(20, ge=1, le=10_000)
    warmup: int = Field(5, ge=0, le=10_000)
    threads: int = Field(1, ge=1, le=256)

    @model_validator(mode="after")
    def _remote_has_url(self) -> LatencySettings:
        if self.mode == "remote" and not self.url:
            raise ValueError("remote latency needs the board's address: --remote http://HOST:PORT")
        return self

    @property
    def measured(self) -> bool:
        return self.mode != "predict"

    def public(self) -> dict[str, Any]:
        """The settings without the token: what is stored with a search."""
        return self.model_dump(exclude={"token"})

    def cache_key(self) -> dict[str, Any]:
        """What makes two measurements of one design comparable: where, and how it was timed."""
        where = f"local:{socket.gethostname()}" if self.mode == "local" else str(self.url)
        backend = "onnxruntime-cpu" if self.mode == "local" else "agent"
        return {"backend": backend, "device": where, "threads": self.threads, "runs": self.runs,
                "warmup": self.warmup}

    def describe(self) -> str:
        if self.mode == "predict":
            return f"predicted on {self.device}"
        if self.mode == "local":
            return f"measured here, ONNX Runtime, {self.threads} thread(s)"
        return f"measured on {self.url}, {self.threads} thread(s)"
