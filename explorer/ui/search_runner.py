"""Searches that run in the background of the UI: one per browser session, stoppable and resumable.

``start(session, spec, settings)`` runs ``explorer.search.search`` in a daemon thread with the UI's
store, so every evaluation is committed as it finishes (exactly as ``explorer search`` does);
``resume(session, search_id)`` runs ``explorer.search.resume_search`` on a stored search (``explorer
search --resume ID``: the stored evaluations are replayed, none is run again); ``stop(session)`` sets
the cancel event, and the search ends after the evaluation under way, ``stopped`` and resumable.

The browser polls (a ``gr.Timer``) and reads :class:`SearchJob`: the progress the engine reports, an
ETA, and the search's id, from which ``explorer.search.view.stored_view`` rebuilds the live front out
of the store. Before its first candidate, a new search computes the presets' numbers with the same
signals (``evaluate_candidate`` at the cheapest rung, no budgets) as reference points; they are cached
in this process by preset design and settings, so only the first search with given settings pays.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..design import load_preset
from ..presets import list_presets
from ..search import (
    Constraints,
    EvalJob,
    LatencySettings,
    ProxyTask,
    SearchResult,
    design_key,
    evaluate_candidate,
    resume_search,
    search,
)
from ..search.evaluate import KnownSignals
from ..spec import ArchitectureSpec, SpecError
from ..store import Store

__all__ = ["PresetReference", "SearchJob", "SearchSettings", "current", "preset_references", "preset_references_cached",
           "reference_cache_file", "resume", "start", "stop", "wait"]


@dataclass(frozen=True)
class SearchSettings:
    """A new search's settings, already checked (``search_callbacks.parse_settings``)."""

    objectives: tuple[str, ...]
    constraints: Constraints
    task: ProxyTask
    latency: LatencySettings
    steps: int | None  # new candidates; None: the time budget
    budget_minutes: float | None
    seed: int = 0
    population: int = 12
    sample: int = 4
    presets: bool = True  # compute the presets as reference points


@dataclass(frozen=True)
class PresetReference:
    """A preset's numbers from the search's own signals: ``record`` has params, macs, … accuracy."""

    name: str
    record: dict[str, Any]


@dataclass
class SearchJob:
    """A session's background search, as the browser reads it."""

    session: str
    kind: Literal["new", "resume"]
    cancel: threading.Event = field(default_factory=threading.Event)
    search_id: int | None = None
    phase: Literal["presets", "searching", "finished", "stopped", "failed"] = "searching"
    done: int = 0
    total: int = 0
    minutes: bool = False  # ``done``/``total`` are seconds of a time budget, not candidates
    message: str = "starting…"
    started: float = field(default_factory=time.monotonic)
    search_started: float | None = None  # when the first candidate was reported (ETA counts from there)
    first_done: int = 0  # ``done`` at that moment (a resume starts part-way)
    ended: float | None = None
    error: str | None = None
    result: SearchResult | None = None
    references: list[PresetReference] = field(default_factory=list)
    rendered: int = -1  # evaluations the browser has drawn (``search_callbacks`` keeps it)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.phase in ("presets", "searching")

    def eta_s(self) -> float | None:
        """Seconds left: the budget's rest in minutes mode, else the pace so far times the candidates left."""
        if not self.running or self.total <= 0:
            return None
        if self.minutes:
            return max(0.0, float(self.total - self.done))
        if self.search_started is None or self.done <= self.first_done:
            return None
        pace = (time.monotonic() - self.search_started) / (self.done - self.first_done)
        return pace * max(0, self.total - self.done)

    def elapsed_s(self) -> float:
        return (self.ended or time.monotonic()) - self.started


_JOBS: dict[str, SearchJob] = {}
_LOCK = threading.Lock()
_REFERENCES: dict[str, dict[str, Any]] = {}  # free-signal key -> a preset's costs
_ACCURACY_FILES: dict[str, dict[str, float | None]] = {}  # cache file -> accuracy key -> proxy accuracy


def current(session: str) -> SearchJob | None:
    """The session's latest search (running or ended), or None."""
    with _LOCK:
        return _JOBS.get(session)


def _running_ids() -> set[int]:
    return {j.search_id for j in _JOBS.values() if j.running and j.search_id is not None}


def _claim(session: str, job: SearchJob, search_id: int | None = None) -> None:
    with _LOCK:
        old = _JOBS.get(session)
        if old is not None and old.running:
            raise ValueError("a search is already running in this page; stop it first (Stop), then start another")
        if search_id is not None and search_id in _running_ids():
            raise ValueError(f"search {search_id} is running in another page; wait for it to end or stop it there")
        _JOBS[session] = job


def _progress(job: SearchJob) -> Callable[[int, int, str], None]:
    def report(done: int, total: int, message: str) -> None:
        if job.search_started is None:
            job.search_started, job.first_done = time.monotonic(), done
        job.done, job.total, job.message = done, total, message

    return report


def _run(job: SearchJob, work: Callable[[], SearchResult]) -> None:
    try:
        job.result = work()
        job.phase = "stopped" if job.result.status == "stopped" else "finished"
        job.search_id = job.result.search_id
    except (SpecError, ValueError, FileNotFoundError) as exc:
        job.phase, job.error = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - shown to the user as one line
        job.phase, job.error = "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        job.ended = time.monotonic()


def _launch(job: SearchJob, work: Callable[[], SearchResult]) -> SearchJob:
    job.thread = threading.Thread(target=_run, args=(job, work), name=f"search-{job.session}", daemon=True)
    job.thread.start()
    return job


def start(session: str, spec: ArchitectureSpec, settings: SearchSettings, store: Store) -> SearchJob:
    """Start a new search from ``spec`` in the background; ``ValueError`` if the session runs one."""
    job = SearchJob(session=session, kind="new", minutes=settings.steps is None,
                    total=settings.steps if settings.steps is not None else int((settings.budget_minutes or 0) * 60))
    _claim(session, job)

    def note_id(search_id: int | None) -> None:
        job.search_id = search_id
        job.phase, job.message = "searching", "evaluating the starting design…"

    def work() -> SearchResult:
        if settings.presets:
            job.phase = "presets"
            job.references = preset_references(settings, job.cancel, job, reference_cache_file(store))
            job.message = "loading the proxy data…"
        return search(spec, settings.constraints, settings.objectives, steps=settings.steps,
                      budget_minutes=settings.budget_minutes, population=settings.population,
                      sample=settings.sample, seed=settings.seed, task=settings.task, latency=settings.latency,
                      store=store, progress=_progress(job), cancel=job.cancel, on_start=note_id)

    return _launch(job, work)


def resume(session: str, search_id: int, store: Store, steps: int | None = None,
           budget_minutes: float | None = None) -> SearchJob:
    """Continue stored search ``search_id`` in the background (``explorer search --resume``).

    ``steps``/``budget_minutes`` replace its budget (to extend a finished search); ``ValueError`` when
    the session or another page runs it, or it is not stored.
    """
    row = store.get_search(search_id)  # ValueError naming the fix when there is none
    config = row["config"]
    total = steps if steps is not None else config.get("steps")
    minutes = budget_minutes if budget_minutes is not None else config.get("budget_minutes")
    job = SearchJob(session=session, kind="resume", search_id=search_id, minutes=total is None,
                    total=int(total) if total is not None else int(float(minutes or 0) * 60))
    job.message = f"replaying the {row['counts']['evaluations']} stored evaluations…"
    _claim(session, job, search_id)
    try:
        job.references = preset_references_cached(config, reference_cache_file(store))
    except (ValueError, KeyError):
        job.references = []
    return _launch(job, lambda: resume_search(store, search_id, steps=steps, budget_minutes=budget_minutes,
                                              progress=_progress(job), cancel=job.cancel))


def stop(session: str) -> SearchJob | None:
    """Ask the session's running search to stop after the evaluation under way; the job, or None."""
    job = current(session)
    if job is None or not job.running:
        return None
    job.cancel.set()
    return job


def wait(session: str, timeout_s: float = 120.0) -> SearchJob | None:
    """Block until the session's search ends (tests, scripts); the job."""
    job = current(session)
    if job is not None and job.thread is not None:
        job.thread.join(timeout_s)
    return job


# ----------------------------------------------------------------------------- the presets as references


def _free_key(spec: ArchitectureSpec, settings: SearchSettings) -> str:
    latency = settings.latency.cache_key() if settings.latency.measured else settings.latency.public()
    return json.dumps([design_key(spec), latency, "latency" in settings.objectives], sort_keys=True, default=str)


def _accuracy_key(spec: ArchitectureSpec, settings: SearchSettings) -> str:
    return json.dumps([design_key(spec), settings.task.model_dump(), settings.seed], sort_keys=True)


def reference_cache_file(store: Store | None) -> Path | None:
    """Where the presets' proxy accuracies are kept between server starts: beside the store's file."""
    if store is None or str(store.path) == ":memory:":
        return None
    return store.path.parent / "search_references.json"


def _disk_cache(path: Path | None) -> dict[str, float | None]:
    if path is None:
        return {}
    with _LOCK:
        if str(path) not in _ACCURACY_FILES:
            try:
                data = json.loads(path.read_text())
                _ACCURACY_FILES[str(path)] = {str(k): v for k, v in data.items()} if isinstance(data, dict) else {}
            except (OSError, ValueError):
                _ACCURACY_FILES[str(path)] = {}
        return _ACCURACY_FILES[str(path)]


def _save_disk_cache(path: Path | None, cache: dict[str, float | None]) -> None:
    if path is None:
        return
    try:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache))
        tmp.replace(path)
    except OSError:
        pass  # a cache: losing it costs time only


def preset_references(settings: SearchSettings, cancel: threading.Event | None = None,
                      job: SearchJob | None = None, cache_file: Path | None = None) -> list[PresetReference]:
    """Every preset's numbers from the search's own signals (free signals, latency, the cheapest rung).

    No budgets or rules apply (a reference is drawn whatever it breaks). The free signals are cached in
    this process, the proxy accuracies also in ``cache_file`` (by the preset's design, the proxy task and
    the seed), so the presets are trained once per settings, not once per search or server start.
    ``cancel`` stops between presets (what is done is kept).
    """
    fidelity = settings.task.steps if "accuracy" in settings.objectives else 0
    wants_latency = "latency" in settings.objectives
    accuracies = _disk_cache(cache_file)
    names = list_presets()
    out: list[PresetReference] = []
    for i, name in enumerate(names):
        if cancel is not None and cancel.is_set():
            break
        try:
            spec = load_preset(name)
        except SpecError:
            continue
        key = _free_key(spec, settings)
        record = _REFERENCES.get(key)
        if record is None:
            if job is not None:
                job.message = f"reference points: counting preset {name} ({i + 1}/{len(names)})"
            result = evaluate_candidate(EvalJob(seq=0, spec=spec.to_dict(), latency=settings.latency if wants_latency
                                                else None, task=settings.task, full=True))
            record = _REFERENCES[key] = {k: result[k] for k in ("params", "macs", "peak_activation_bytes",
                                                               "latency_ms")}
        record = {**record, "accuracy": None}
        if fidelity:
            akey = _accuracy_key(spec, settings)
            if akey not in accuracies:
                if job is not None:
                    job.message = (f"reference points: training preset {name} for {fidelity} steps ({i + 1}/"
                                   f"{len(names)}; once per proxy task and seed, then remembered)")
                result = evaluate_candidate(EvalJob(
                    seq=0, spec=spec.to_dict(), fidelity_steps=fidelity, task=settings.task, train_seed=settings.seed,
                    known=KnownSignals(params=record["params"], macs=record["macs"],
                                       peak_activation_bytes=record["peak_activation_bytes"],
                                       latency_ms=record["latency_ms"])))
                accuracies[akey] = result["accuracy"]
                _save_disk_cache(cache_file, accuracies)
            record["accuracy"] = accuracies[akey]
        out.append(PresetReference(name, record))
    return out


def preset_references_cached(config: dict[str, Any], cache_file: Path | None = None) -> list[PresetReference]:
    """The references already known for a stored search's settings (nothing is trained or measured here)."""
    settings = SearchSettings(
        objectives=tuple(config["objectives"]), constraints=Constraints.model_validate(config.get("constraints", {})),
        task=ProxyTask.model_validate(config.get("task", {})), latency=LatencySettings.model_validate(
            config.get("latency", {})), steps=config.get("steps"), budget_minutes=config.get("budget_minutes"),
        seed=int(config.get("seed", 0)))
    fidelity = settings.task.steps if "accuracy" in settings.objectives else 0
    accuracies = _disk_cache(cache_file)
    out = []
    for name in list_presets():
        try:
            spec = load_preset(name)
        except SpecError:
            continue
        if fidelity and _accuracy_key(spec, settings) not in accuracies:
            continue
        record = _REFERENCES.get(_free_key(spec, settings))
        if record is None and not settings.latency.measured:  # free: counted (and predicted) now
            wants_latency = "latency" in settings.objectives
            result = evaluate_candidate(EvalJob(seq=0, spec=spec.to_dict(), latency=settings.latency if wants_latency
                                                else None, task=settings.task, full=True))
            record = _REFERENCES[_free_key(spec, settings)] = {
                k: result[k] for k in ("params", "macs", "peak_activation_bytes", "latency_ms")}
        if record is None:
            continue
        out.append(PresetReference(name, {**record, "accuracy": accuracies.get(_accuracy_key(spec, settings))
                                          if fidelity else None}))
    return out
