"""The search loop: regularised evolution with Pareto selection and successive halving, replayable.

**Population** (Real et al., *Regularized Evolution*, AAAI 2019): the ``population`` most recent
feasible candidates. Each step draws a parent and mutates it once (``explorer.mutate.random_mutation``);
a feasible child joins and the oldest member retires, however good (ageing keeps the search moving).
While the population is not yet full the parent is a random member (a random walk that seeds it);
then it is the winner of a tournament of ``sample`` random members, the winner being the member that
comes first in the population's NSGA-II order (``explorer.pareto.nsga2_order``: Pareto rank, then the
larger crowding distance). While no design is feasible (an infeasible start), the parent is the
least-violating (``violation_amount``, Deb's rule) of ``sample`` recent candidates, so the walk heads
into the feasible region. A child identical to an earlier candidate is not evaluated again: the step
mutates it once more (up to ``WALK`` times; the candidate's ``mutation`` lists them all), and a step that
finds nothing new gives way to the next step.

**Fidelities** (successive halving, asynchronous as in ASHA, Li et al. 2020): with ``accuracy`` among
the objectives, every child gets the free signals and rung 0 (``task.steps`` training steps). Rung ``k``
holds the candidates trained ``steps · ηᵏ`` steps. After every batch, a candidate is promoted to rung
``k + 1`` when it is among the top ``⌊n_k / η⌋`` of the ``n_k`` feasible candidates at rung ``k``, ranked
by NSGA-II order on the objectives with their rung-``k`` accuracy (same fidelity, like against like),
and rung ``k + 1`` has fewer than ``⌊n_k / η⌋`` members (so training time stays bounded: about
``rungs × steps`` training steps per child, however the ranking churns); the highest rung is served
first. Promotions are extra work: ``steps`` counts children only.

**Across rungs** a candidate's accuracy objective is its highest-rung accuracy. Longer training of the
same design almost always scores higher, so a candidate seen only at a short rung is judged on a
pessimistic number: it is never credited with accuracy it has not shown, and a design that has
proven itself at a longer rung is not displaced by an unproven one's lucky short run. The fidelity of
every number is reported (``fidelity_steps``).

**Front and hypervolume**: after every generation (one batch of evaluations; one evaluation in
process) the front of all feasible candidates so far and its hypervolume inside fixed bounds
(``objectives.hypervolume_bounds``: from the start and the budgets) are recorded.

**Determinism and resume**: everything random in step ``s`` comes from ``random.Random(f"{seed}:{s}")``,
and a batch is applied in job order whatever order its results arrive in. So the sequence of
evaluations is a function of the configuration and the results alone, and a search is resumed by
running it again from the start with the stored results in place of evaluations (a *replay*: cheap,
since nothing is analysed or trained again, and exact). Every result is committed as it arrives.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from ..design import load_design
from ..mutate import random_mutation
from ..pareto import hypervolume, nsga2_order, pareto_front
from ..spec import MAX_NAME_CHARS, ArchitectureSpec, SpecError, dump_spec
from .constraints import Constraints, violation_amount
from .evaluate import EvalJob, KnownSignals
from .executor import Executor, InProcessExecutor
from .objectives import OBJECTIVES, hypervolume_bounds, objective_values, parse_objectives
from .task import SETTINGS_KEYS, LatencySettings, ProxyTask

__all__ = [
    "Candidate",
    "FrontRecord",
    "Journal",
    "MemoryJournal",
    "Progress",
    "ReplayError",
    "SearchConfig",
    "SearchResult",
    "design_key",
    "run_search",
    "search_config",
]

Progress = Callable[[int, int, str], None]
MAX_STEPS = 100_000
PROPOSAL_TRIES = 64  # steps a child proposal may take (failed mutations, duplicates) before giving up
WALK = 8  # mutations one step may chain to reach a design not evaluated yet


class ReplayError(ValueError):
    """A stored search no longer replays (the code or the presets changed since it ran)."""


class SearchConfig(BaseModel):
    """Everything that decides a search (stored with it; the board's token is not part of it)."""

    model_config = ConfigDict(extra="forbid")

    base_yaml: str
    objectives: list[str]
    constraints: Constraints = Field(default_factory=Constraints)
    task: ProxyTask = Field(default_factory=ProxyTask)
    latency: LatencySettings = Field(default_factory=LatencySettings)
    steps: int | None = Field(50, ge=1, le=MAX_STEPS, description="children to evaluate (None: until the time budget)")
    budget_minutes: float | None = Field(None, gt=0, le=7 * 24 * 60)
    population: int = Field(12, ge=1, le=1000)
    sample: int = Field(4, ge=1, le=1000)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    batch: int = Field(1, ge=1, le=1024, description="evaluations per generation (1: steady state)")

    @model_validator(mode="after")
    def _consistent(self) -> SearchConfig:
        self.objectives = list(parse_objectives(self.objectives))
        if self.sample > self.population:
            raise ValueError(f"sample {self.sample} must be between 1 and the population {self.population}")
        if self.steps is None and self.budget_minutes is None:
            raise ValueError("give a budget: steps (candidates) or budget_minutes")
        return self

    def stored(self) -> dict[str, Any]:
        """The configuration as stored: plain JSON, without the token."""
        data = self.model_dump(mode="json")
        data["latency"] = self.latency.public()
        return data


class Candidate(BaseModel):
    """One design the search evaluated, with its numbers at its highest fidelity."""

    index: int
    step: int
    parent: int | None
    mutation: str
    name: str
    params: int
    macs: int
    peak_activation_bytes: int
    latency_ms: float | None = None
    accuracy: float | None = None
    fidelity_steps: int = 0
    accuracies: dict[int, float] = Field(default_factory=dict, description="training steps -> accuracy")
    feasible: bool
    reasons: list[str] = Field(default_factory=list)
    seed: int = 0
    seconds: float = 0.0
    worker: str = ""
    spec: ArchitectureSpec = Field(exclude=True, repr=False)

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def spec_yaml(self) -> str:
        """The design as YAML, emitted when first asked for (a result, the store, ``--json``): emitting it
        for every candidate was most of a warm search's time."""
        return dump_spec(self.spec)


class FrontRecord(BaseModel):
    """The front after one generation: candidate indices and hypervolume (in the search's fixed bounds)."""

    evaluations: int
    candidates: int
    front: list[int]
    hypervolume: float


class SearchResult(BaseModel):
    search_id: int | None = None
    objectives: list[str]
    status: Literal["finished", "stopped", "exhausted"]
    history: list[Candidate]
    pareto: list[int]
    fronts: list[FrontRecord]
    bounds: list[tuple[float, float]]
    best: Candidate
    evaluations: int
    replayed: int = Field(0, description="evaluations taken from the store instead of run again")

    @property
    def rejected(self) -> int:
        return sum(not c.feasible for c in self.history)

    @property
    def hypervolume(self) -> float:
        return self.fronts[-1].hypervolume if self.fronts else 0.0

    def to_json(self) -> dict[str, Any]:
        """What ``explorer search --json`` prints: ``search_id, objectives, candidates, pareto`` and a summary."""
        return {
            "search_id": self.search_id,
            "objectives": self.objectives,
            "candidates": [c.model_dump() for c in self.history],
            "pareto": self.pareto,
            "hypervolume": self.hypervolume,
            "hypervolume_curve": [f.hypervolume for f in self.fronts],
            "best": self.best.index,
            "status": self.status,
            "evaluations": self.evaluations,
        }


def design_key(spec: ArchitectureSpec) -> str:
    """A design's identity for the search: sha256 of its canonical JSON without name and description."""
    data = spec.to_dict()
    data.pop("name", None)
    data.pop("description", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ----------------------------------------------------------------------------- journal


class Journal(Protocol):
    """Where a search's evaluations go as they finish, and come back from on a resume."""

    search_id: int | None
    prior_seconds: float  # time the search ran before this session

    def stored(self) -> dict[int, dict[str, Any]]: ...

    def record(self, seq: int, meta: dict[str, Any], result: dict[str, Any], elapsed_s: float,
               spec: ArchitectureSpec) -> None: ...

    def cached_latency(self, design: str, settings: dict[str, Any]) -> float | None: ...

    def save_latency(self, spec: ArchitectureSpec, design: str, measurement: dict[str, Any]) -> None: ...

    def finish(self, status: str, error: str | None = None) -> None: ...


class MemoryJournal:
    """A journal in memory (no store): a search run twice with one journal replays the first run."""

    search_id: int | None = None

    def __init__(self) -> None:
        self.records: dict[int, dict[str, Any]] = {}
        self.latency: dict[str, float] = {}
        self.prior_seconds = 0.0
        self.status = "running"

    def stored(self) -> dict[int, dict[str, Any]]:
        return dict(self.records)

    def record(self, seq: int, meta: dict[str, Any], result: dict[str, Any], elapsed_s: float,
               spec: ArchitectureSpec) -> None:
        self.records[seq] = {**meta, "result": result}
        self.prior_seconds = elapsed_s

    def cached_latency(self, design: str, settings: dict[str, Any]) -> float | None:
        return self.latency.get(json.dumps([design, settings], sort_keys=True))

    def save_latency(self, spec: ArchitectureSpec, design: str, measurement: dict[str, Any]) -> None:
        settings = {k: measurement[k] for k in SETTINGS_KEYS}
        self.latency[json.dumps([design, settings], sort_keys=True)] = float(measurement["median_ms"])

    def finish(self, status: str, error: str | None = None) -> None:
        self.status = status


# ----------------------------------------------------------------------------- the loop


@dataclass
class _Entry:
    """A candidate inside the loop: its design and its results by rung."""

    index: int
    step: int
    parent: int | None
    mutation: str
    spec: ArchitectureSpec
    key: str
    results: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def evaluated(self) -> bool:
        return 0 in self.results

    @property
    def feasible(self) -> bool:
        return bool(self.results) and all(r["feasible"] for r in self.results.values())

    def top_rung(self) -> int | None:
        rungs = [k for k, r in self.results.items() if r["accuracy"] is not None]
        return max(rungs) if rungs else None

    def record(self, rung: int | None = None) -> dict[str, Any]:
        """Costs from the first evaluation, accuracy from ``rung`` (default: the highest with one)."""
        first = self.results[0]
        rung = self.top_rung() if rung is None else rung
        accuracy = self.results[rung]["accuracy"] if rung is not None and rung in self.results else None
        return {**first, "accuracy": accuracy}


class _Engine:
    def __init__(self, config: SearchConfig, token: str, executor: Executor, journal: Journal,
                 progress: Progress | None, cancel: threading.Event | None) -> None:
        self.cfg = config
        self.names = list(config.objectives)
        self.maximise = [OBJECTIVES[n].maximise for n in self.names]
        self.rungs = config.task.rung_steps() if "accuracy" in self.names else [0]
        needs_latency = "latency" in self.names or config.constraints.max_latency_ms is not None
        self.latency = config.latency.model_copy(update={"token": token}) if needs_latency else None
        self.executor, self.journal, self.progress, self.cancel = executor, journal, progress, cancel
        self.stored = journal.stored()
        self.entries: list[_Entry] = []
        self.keys: dict[str, int] = {}
        self.pool: deque[int] = deque()
        self.promoted: list[set[int]] = [set() for _ in self.rungs]
        self.fronts: list[FrontRecord] = []
        self.bounds: list[tuple[float, float]] = []
        self.seq = self.step = self.children = self.replayed = 0
        self.prior_seconds = journal.prior_seconds  # read once: the journal's own count moves on as we record
        self.started = time.monotonic()

    # -- bookkeeping

    def spent(self) -> float:
        """Seconds this search has run, over every session."""
        return self.prior_seconds + time.monotonic() - self.started

    def _values(self, entry: _Entry, rung: int | None = None) -> list[float]:
        return objective_values(entry.record(rung), self.names)

    def _new_entry(self, spec: ArchitectureSpec, step: int, parent: int | None, mutation: str) -> _Entry:
        index = len(self.entries)
        if index:  # children are named after the start: attendnext-17
            base_name = self.entries[0].spec.name
            spec = spec.model_copy(update={"name": f"{base_name[: MAX_NAME_CHARS - 8]}-{index}"})
        entry = _Entry(index, step, parent, mutation, spec, design_key(spec))
        self.entries.append(entry)
        self.keys[entry.key] = index
        return entry

    # -- proposals

    def _parent(self, rng: random.Random) -> _Entry:
        members = list(self.pool)
        if members and len(members) < self.cfg.population:
            return self.entries[rng.choice(members)]
        if members:
            contenders = rng.sample(members, min(self.cfg.sample, len(members)))
            order = nsga2_order([self._values(self.entries[i]) for i in members], self.maximise)
            position = {members[i]: pos for pos, i in enumerate(order)}
            return self.entries[min(contenders, key=lambda i: position[i])]
        recent = [e.index for e in self.entries if e.evaluated][-self.cfg.population:]
        walkers = [self.entries[i] for i in rng.sample(recent, min(self.cfg.sample, len(recent)))]

        def amount(e: _Entry) -> float:
            r = e.results[0]
            return violation_amount(r["params"], r["macs"], r["peak_activation_bytes"], r["latency_ms"],
                                    r["reasons"], self.cfg.constraints)

        return min(walkers, key=lambda e: (amount(e), e.index))

    def _propose(self) -> _Entry | None:
        """A new child (not yet evaluated), or None when ``PROPOSAL_TRIES`` steps found none."""
        for _ in range(PROPOSAL_TRIES):
            self.step += 1
            rng = random.Random(f"{self.cfg.seed}:{self.step}")
            parent = self._parent(rng)
            spec, done = parent.spec, []
            for _ in range(WALK):  # a known design: walk on from it (in the same step's generator)
                try:
                    mutation = random_mutation(spec, rng)
                except SpecError:
                    break
                spec = mutation.spec
                done.append(mutation.description)
                if design_key(spec) not in self.keys:
                    self.children += 1
                    return self._new_entry(spec, self.step, parent.index, " + ".join(done))
        return None

    def _promotions(self, limit: int) -> list[tuple[_Entry, int]]:
        """Up to ``limit`` (candidate, rung) promotions due now, the highest rung first."""
        out: list[tuple[_Entry, int]] = []
        eta = self.cfg.task.eta
        for k in reversed(range(len(self.rungs) - 1)):
            members = [e for e in self.entries if k in e.results and e.results[k]["feasible"]]
            quota = len(members) // eta
            if len(self.promoted[k]) >= quota:
                continue  # rung k + 1 holds at most ⌊n_k / η⌋: the ranking may change, the budget does not
            order = nsga2_order([self._values(e, k) for e in members], self.maximise)
            for i in order[:quota]:
                entry = members[i]
                if entry.index in self.promoted[k] or not entry.feasible:
                    continue
                self.promoted[k].add(entry.index)
                out.append((entry, k + 1))
                if len(out) >= limit:
                    return out
                if len(self.promoted[k]) >= quota:
                    break
        return out

    def _next_batch(self) -> list[tuple[_Entry, int]]:
        items = self._promotions(self.cfg.batch)
        while len(items) < self.cfg.batch and (self.cfg.steps is None or self.children < self.cfg.steps):
            child = self._propose()
            if child is None:
                break
            items.append((child, 0))
        return items

    # -- evaluation

    def _job(self, entry: _Entry, rung: int, seq: int) -> dict[str, Any]:
        known = None
        latency_ms = None
        if rung > 0:
            first = entry.results[0]
            known = KnownSignals(params=first["params"], macs=first["macs"],
                                 peak_activation_bytes=first["peak_activation_bytes"], latency_ms=first["latency_ms"])
        elif self.latency is not None and self.latency.measured:
            latency_ms = self.journal.cached_latency(entry.key, self.latency.cache_key())
        return EvalJob(seq=seq, spec=entry.spec.to_dict(), fidelity_steps=self.rungs[rung],
                       constraints=self.cfg.constraints, latency=self.latency, latency_ms=latency_ms, known=known,
                       task=self.cfg.task, train_seed=self.cfg.seed, full=entry.index == 0).model_dump()

    def _meta(self, entry: _Entry, rung: int) -> dict[str, Any]:
        return {"candidate": entry.index, "rung": rung, "design_key": entry.key,
                "kind": "start" if entry.index == 0 else ("promotion" if rung else "child"), "step": entry.step,
                "parent": entry.parent, "mutation": entry.mutation, "fidelity_steps": self.rungs[rung],
                "seed": self.cfg.seed}

    def _dispatch(self, items: list[tuple[_Entry, int]]) -> None:
        """Evaluate a batch (or take its stored results), commit each result as it comes, apply in order."""
        results: dict[int, dict[str, Any]] = {}
        seqs, todo = [], []
        for entry, rung in items:
            seq = self.seq
            self.seq += 1
            seqs.append(seq)
            stored = self.stored.get(seq)
            if stored is not None:
                if stored["design_key"] != entry.key or stored["rung"] != rung:
                    raise ReplayError(
                        f"evaluation {seq} of the stored search is not the one the search makes now (the code, the "
                        "presets or the settings changed since it ran); start a new search instead of resuming")
                results[seq] = stored["result"]
                self.replayed += 1
            else:
                todo.append((seq, entry, rung, self._job(entry, rung, seq)))
        if todo:
            for i, result in self.executor.run([job for *_, job in todo]):
                seq, entry, rung, _ = todo[i]
                self.journal.record(seq, self._meta(entry, rung), result, self.spent(), entry.spec)
                if result.get("latency_measurement"):
                    self.journal.save_latency(entry.spec, entry.key, result["latency_measurement"])
                results[seq] = result
        for (entry, rung), seq in zip(items, seqs, strict=True):
            self._apply(entry, rung, results[seq])

    def _apply(self, entry: _Entry, rung: int, result: dict[str, Any]) -> None:
        entry.results[rung] = result
        if rung == 0 and entry.feasible:
            self.pool.append(entry.index)
            if len(self.pool) > self.cfg.population:
                self.pool.popleft()  # regularised: the oldest retires, however good
        elif not result["feasible"] and entry.index in self.pool:
            self.pool.remove(entry.index)  # a promotion that failed (training diverged, …)

    def _record_front(self) -> None:
        feasible = [e for e in self.entries if e.evaluated and e.feasible]
        points = [self._values(e) for e in feasible]
        front = pareto_front(points, self.maximise) if points else []
        self.fronts.append(FrontRecord(
            evaluations=self.seq, candidates=sum(e.evaluated for e in self.entries),
            front=sorted(feasible[i].index for i in front),
            hypervolume=hypervolume([points[i] for i in front], self.bounds) if front else 0.0))

    def _report(self, entry: _Entry | None) -> None:
        if self.progress is None:
            return
        front = self.fronts[-1]
        what = ""
        if entry is not None:
            verdict = "kept" if entry.feasible else "rejected"
            what = f"{entry.mutation}: {verdict}; "
        message = (f"candidate {self.children}"
                   + (f"/{self.cfg.steps}" if self.cfg.steps is not None else "")
                   + f": {what}front {len(front.front)}, hypervolume {front.hypervolume:.3f}")
        if self.cfg.steps is not None:
            self.progress(self.children, self.cfg.steps, message)
        else:
            total = int(self.cfg.budget_minutes * 60)  # type: ignore[operator]
            self.progress(min(total, int(self.spent())), total, message)

    # -- the whole search

    def run(self) -> tuple[str, list[_Entry]]:
        base = load_design(self.cfg.base_yaml)
        start = self._new_entry(base, 0, None, "start")
        self._dispatch([(start, 0)])
        self.bounds = hypervolume_bounds(self.names, start.results[0], self.cfg.constraints)
        self._record_front()
        self._report(None)
        budget = self.cfg.budget_minutes * 60 if self.cfg.budget_minutes is not None else None
        status = "finished"
        while self.cfg.steps is None or self.children < self.cfg.steps:
            if self.cancel is not None and self.cancel.is_set():
                status = "stopped"
                break
            if budget is not None and self.spent() >= budget:
                break
            items = self._next_batch()
            if not items:
                status = "exhausted"
                break
            self._dispatch(items)
            self._record_front()
            self._report(next((e for e, rung in reversed(items) if rung == 0), None))
        return status, self.entries


def _candidate(entry: _Entry, rungs: list[int], seed: int) -> Candidate:
    first, top = entry.results[0], entry.top_rung()
    reasons = [r for res in entry.results.values() for r in res["reasons"]]
    return Candidate(
        index=entry.index, step=entry.step, parent=entry.parent, mutation=entry.mutation, name=entry.spec.name,
        params=first["params"], macs=first["macs"], peak_activation_bytes=first["peak_activation_bytes"],
        latency_ms=first["latency_ms"], accuracy=entry.results[top]["accuracy"] if top is not None else None,
        fidelity_steps=rungs[top] if top is not None else 0,
        accuracies={rungs[k]: r["accuracy"] for k, r in sorted(entry.results.items()) if r["accuracy"] is not None},
        feasible=entry.feasible, reasons=list(dict.fromkeys(reasons)), seed=seed,
        seconds=round(sum(r["seconds"].get("total", 0.0) for r in entry.results.values()), 4),
        worker=entry.results[max(entry.results)]["worker"], spec=entry.spec)


def run_search(config: SearchConfig, *, token: str = "", executor: Executor | None = None,
               journal: Journal | None = None, progress: Progress | None = None,
               cancel: threading.Event | None = None) -> SearchResult:
    """Run (or, with a journal holding results, resume) the search ``config`` describes.

    Raises ``ValueError`` when no evaluated design meets the constraints (the journal keeps them all),
    ``ReplayError`` when a stored search does not replay.
    """
    journal = journal if journal is not None else MemoryJournal()
    engine = _Engine(config, token, executor or InProcessExecutor(), journal, progress, cancel)
    try:
        status, entries = engine.run()
    except BaseException as exc:
        journal.finish("failed" if not isinstance(exc, KeyboardInterrupt) else "stopped",
                       f"{type(exc).__name__}: {exc}"[:500])
        raise
    journal.finish("stopped" if status == "stopped" else "finished")
    evaluated = [e for e in entries if e.evaluated]
    history = [_candidate(e, engine.rungs, config.seed) for e in evaluated]
    feasible = [c for c in history if c.feasible]
    if not feasible:
        where = f"search {journal.search_id}: " if journal.search_id is not None else ""
        raise ValueError(f"{where}no feasible design among the {len(history)} evaluated: relax the constraints; "
                         "the start breaks: " + "; ".join(history[0].reasons[:3]))
    names = engine.names

    def rank_key(c: Candidate) -> tuple[float, ...]:  # the first objective first, then the others
        values = objective_values(c.model_dump(exclude={"spec_yaml"}), names)
        return (*(-v if m else v for v, m in zip(values, engine.maximise, strict=True)), c.index)

    best = min(feasible, key=rank_key)
    by_index = {c.index: c for c in history}
    pareto = sorted(engine.fronts[-1].front, key=lambda i: rank_key(by_index[i]))
    return SearchResult(search_id=journal.search_id, objectives=names, status=status, history=history,
                        pareto=pareto, fronts=engine.fronts,
                        bounds=engine.bounds, best=best, evaluations=engine.seq, replayed=engine.replayed)


def search_config(base: ArchitectureSpec, objectives: str | Sequence[str], **kwargs: Any) -> SearchConfig:
    """A ``SearchConfig`` from a design and keyword settings; one-line ``ValueError`` on a bad value."""
    from pydantic import ValidationError

    try:
        return SearchConfig(base_yaml=dump_spec(base), objectives=list(parse_objectives(objectives)), **kwargs)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        message = str(err.get("ctx", {}).get("error", "")) or err["msg"]
        raise ValueError(f"search {where + ': ' if where else ''}{message[0].lower() + message[1:]}") from None
