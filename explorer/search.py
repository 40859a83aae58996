"""Constraint-guided design exploration: regularised evolution over the explorer's mutations.

The paper's AttendNeXt came from machine-driven design exploration under constraints "based on
best practices for greater efficiency and robustness". This module is our open version of that
loop (the paper's own search method is not public; this is a documented reconstruction):

- **constraints** (``Constraints``): budgets on params, MACs, peak activation memory and the
  predicted latency on a device profile, plus best-practice rules: anti-aliased downsampling
  (every stride-2 unit after the stem is a blur-pool or has ``anti_alias``), and attention
  condensers where resolution is high (at least one in the first half of the stages);
- **objective**: a score to maximise: ``-MACs``, ``-params`` or ``-predicted latency``;
- **search** (Real et al., *Regularized Evolution*, AAAI 2019): a population of feasible
  designs; each step samples ``sample`` members, mutates the best one with a random valid
  mutation, evaluates the child, and if it meets every constraint adds it and retires the
  oldest member. Infeasible children are recorded with the reason and never join.

Everything is seeded; ``progress`` and ``cancel`` make it a good citizen in the UI and CLI.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from .analysis import Analysis, analyze
from .mutate import random_mutation
from .spec import ArchitectureSpec, ParallelSpec, SpecError, dump_spec

__all__ = ["Candidate", "Constraints", "SearchResult", "make_objective", "search", "violations"]

Progress = Callable[[int, int, str], None]


class Constraints(BaseModel):
    """Budgets (``None`` = no limit) and best-practice rules a design must meet."""

    model_config = ConfigDict(extra="forbid")

    max_params: int | None = Field(None, gt=0)
    max_macs: int | None = Field(None, gt=0)
    max_peak_activation_bytes: int | None = Field(None, gt=0)
    max_latency_ms: float | None = Field(None, gt=0)
    device: str = "host"
    antialias_downsampling: bool = False
    condensers_early: bool = False


class Candidate(BaseModel):
    step: int
    name: str
    mutation: str
    params: int
    macs: int
    peak_activation_bytes: int
    latency_ms: float | None = None
    score: float | None = None
    feasible: bool
    reasons: list[str] = Field(default_factory=list)
    spec_yaml: str


class SearchResult(BaseModel):
    best: Candidate
    history: list[Candidate]
    objective: str

    @property
    def rejected(self) -> int:
        return sum(not c.feasible for c in self.history)


def _stride2_units_after_stem(spec: ArchitectureSpec) -> list[tuple[str, dict]]:
    out = []
    for s, stage in enumerate(spec.stages, 1):
        for b, entry in enumerate(stage.blocks, 1):
            blocks = [x for branch in entry.branches for x in branch] if isinstance(entry, ParallelSpec) else [entry]
            for block in blocks:
                params = block.params
                if int(params.get("stride", 1)) == 2:
                    out.append((f"stage {s}, block {b}", {"type": block.type, **params}))
    return out


def violations(spec: ArchitectureSpec, analysis: Analysis, constraints: Constraints,
               latency_ms: float | None = None) -> list[str]:
    """Why ``spec`` breaks ``constraints`` (empty when it meets them all)."""
    c, out = constraints, []
    if c.max_params and analysis.params > c.max_params:
        out.append(f"params {analysis.params / 1e6:.3f} M > {c.max_params / 1e6:.3f} M")
    if c.max_macs and analysis.macs > c.max_macs:
        out.append(f"MACs {analysis.macs / 1e9:.3f} G > {c.max_macs / 1e9:.3f} G")
    if c.max_peak_activation_bytes and analysis.peak_activation_bytes > c.max_peak_activation_bytes:
        out.append(f"peak activations {analysis.peak_activation_bytes / 2**20:.2f} MiB > "
                   f"{c.max_peak_activation_bytes / 2**20:.2f} MiB")
    if c.max_latency_ms is not None and latency_ms is not None and latency_ms > c.max_latency_ms:
        out.append(f"predicted latency {latency_ms:.2f} ms > {c.max_latency_ms:.2f} ms on {c.device}")
    if c.antialias_downsampling:
        for place, block in _stride2_units_after_stem(spec):
            if block["type"] != "blurpool" and not block.get("anti_alias", False):
                out.append(f"{place}: stride-2 {block['type']} without anti-aliasing")
    if c.condensers_early:
        half = spec.stages[: max(1, len(spec.stages) // 2)]
        if not any(getattr(e, "type", None) == "attention_condenser" for st in half for e in st.blocks):
            out.append("no attention condenser in the first half of the stages")
    return out


def make_objective(name: str, device: str = "host") -> Callable[[ArchitectureSpec, Analysis], float]:
    """A score to maximise: ``macs``, ``params`` or ``latency`` (predicted on ``device``)."""
    if name == "macs":
        return lambda spec, a: -float(a.macs)
    if name == "params":
        return lambda spec, a: -float(a.params)
    if name == "latency":
        from .latency.predictor import predict
        from .latency.profiles import load_profile

        profile = load_profile(device)
        return lambda spec, a: -predict(spec, profile)
    raise ValueError(f"unknown objective {name!r}; use macs, params or latency")


def search(
    base: ArchitectureSpec,
    constraints: Constraints,
    objective: str = "macs",
    steps: int = 50,
    population: int = 12,
    sample: int = 4,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> SearchResult:
    """Regularised evolution from ``base`` under ``constraints``; the best feasible design found."""
    if not 1 <= sample <= population:
        raise ValueError(f"sample {sample} must be between 1 and the population {population}")
    if not 1 <= steps <= 10_000:
        raise ValueError(f"steps {steps} is out of range; use 1 to 10000")
    rng = random.Random(seed)
    score_fn = make_objective(objective, constraints.device)
    predict_latency: Callable[[ArchitectureSpec], float] | None = None
    if constraints.max_latency_ms is not None:
        from .latency.predictor import predict
        from .latency.profiles import load_profile

        profile = load_profile(constraints.device)
        predict_latency = lambda spec: predict(spec, profile)  # noqa: E731
    history: list[Candidate] = []

    def assess(spec: ArchitectureSpec, step: int, mutation: str) -> Candidate:
        a = analyze(spec)
        latency = predict_latency(spec) if predict_latency else None
        reasons = violations(spec, a, constraints, latency)
        score = score_fn(spec, a) if not reasons else None
        cand = Candidate(step=step, name=spec.name, mutation=mutation, params=a.params, macs=a.macs,
                         peak_activation_bytes=a.peak_activation_bytes, latency_ms=latency, score=score,
                         feasible=not reasons, reasons=reasons, spec_yaml=dump_spec(spec))
        history.append(cand)
        return cand

    start = assess(base, 0, "start")
    pool: deque[tuple[ArchitectureSpec, Candidate]] = deque()
    if start.feasible:
        pool.append((base, start))
    # seed the population: random walks from the base until enough feasible designs exist
    tries = 0
    while len(pool) < population and tries < 20 * population:
        tries += 1
        if cancel is not None and cancel.is_set():
            break
        try:
            mutation = random_mutation(pool[rng.randrange(len(pool))][0] if pool else base, rng)
        except SpecError:
            continue
        cand = assess(mutation.spec, 0, mutation.description)
        if cand.feasible:
            pool.append((mutation.spec, cand))
        if progress:
            progress(0, steps, f"seeding: {len(pool)}/{population} feasible")
    if not pool:
        raise ValueError("no feasible design found near the base: relax the constraints; first reasons: "
                         + "; ".join(history[0].reasons[:3]))
    for step in range(1, steps + 1):
        if cancel is not None and cancel.is_set():
            break
        contenders = rng.sample(list(pool), min(sample, len(pool)))
        parent = max(contenders, key=lambda pc: pc[1].score or float("-inf"))[0]
        try:
            mutation = random_mutation(parent, rng)
        except SpecError:
            continue
        cand = assess(mutation.spec, step, mutation.description)
        if cand.feasible:
            pool.append((mutation.spec, cand))
            if len(pool) > population:
                pool.popleft()  # regularised: the oldest retires, however good
        if progress:
            progress(step, steps, f"step {step}: {'kept' if cand.feasible else 'rejected'} {mutation.description}")
    feasible = [c for c in history if c.feasible]
    best = max(feasible, key=lambda c: c.score if c.score is not None else float("-inf"))
    return SearchResult(best=best, history=history, objective=objective)
