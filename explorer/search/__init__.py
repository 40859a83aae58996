"""Design exploration that judges accuracy: multi-objective, multi-fidelity, hardware-aware search.

The paper's AttendNeXt came from machine-driven design exploration that trades accuracy against
speed under constraints "based on best practices for greater efficiency and robustness". Its method
is not public; this package is our documented reconstruction of such a loop:

- **objectives** (``objectives.py``): two or three of ``accuracy`` (maximised: validation accuracy
  after short training on a proxy task), ``latency`` (predicted on a device profile, measured here in
  ONNX Runtime or on a board), ``macs``, ``params``, ``peak`` (minimised). One alone is a plain
  minimisation, as the search used to be;
- **constraints** (``constraints.py``): budgets on params, MACs, peak memory and latency, and the
  best-practice rules (anti-aliased downsampling, attention condensers early). Hard: a design that
  breaks one never joins the population;
- **search** (``engine.py``): regularised evolution whose tournaments pick by Pareto rank and
  crowding (NSGA-II order), with successive halving over training lengths (ASHA) so that only the
  promising designs are trained longer; the front and its hypervolume are recorded every generation;
- **evaluation** (``evaluate.py``): ``evaluate_candidate(job) -> result``, a pure function of plain
  data, run by an executor (``executor.py``: in process; a distributed one slots in);
- **nothing lost** (``journal.py``): with a store, every evaluation is committed as it finishes and a
  search killed at any point resumes (``resume_search``) without evaluating anything twice; latency
  measurements are cached by design and settings and never repeated.

``search(base, constraints, objectives, steps, …)`` runs one; ``resume_search(store, id)`` continues one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from ..spec import ArchitectureSpec
from ..store import Store
from .constraints import Constraints, latency_violations, violation_amount, violations
from .engine import (
    Candidate,
    FrontRecord,
    MemoryJournal,
    Progress,
    ReplayError,
    SearchConfig,
    SearchResult,
    design_key,
    run_search,
    search_config,
)
from .evaluate import EvalJob, EvalResult, evaluate_candidate, proxy_data
from .executor import Executor, InProcessExecutor
from .journal import StoreJournal
from .objectives import OBJECTIVES, hypervolume_bounds, parse_objectives
from .task import LatencySettings, ProxyTask

__all__ = [
    "OBJECTIVES",
    "Candidate",
    "Constraints",
    "EvalJob",
    "EvalResult",
    "Executor",
    "FrontRecord",
    "InProcessExecutor",
    "LatencySettings",
    "MemoryJournal",
    "Progress",
    "ProxyTask",
    "ReplayError",
    "SearchConfig",
    "SearchResult",
    "StoreJournal",
    "design_key",
    "evaluate_candidate",
    "hypervolume_bounds",
    "latency_violations",
    "parse_objectives",
    "resume_search",
    "run_search",
    "search",
    "search_config",
    "violation_amount",
    "violations",
]


def _check_sources(config: SearchConfig) -> None:
    """Fail before the first evaluation when the proxy data or the device profile cannot be had."""
    if "accuracy" in config.objectives:
        proxy_data(config.task.dataset, config.task.input_size)
    needs_latency = "latency" in config.objectives or config.constraints.max_latency_ms is not None
    if needs_latency and config.latency.mode == "predict":
        from ..latency.profiles import load_profile

        load_profile(config.latency.device)


def search(
    base: ArchitectureSpec,
    constraints: Constraints | None = None,
    objectives: str | Sequence[str] = ("accuracy", "latency"),
    steps: int | None = 50,
    population: int = 12,
    sample: int = 4,
    seed: int = 0,
    *,
    task: ProxyTask | None = None,
    latency: LatencySettings | None = None,
    budget_minutes: float | None = None,
    batch: int = 1,
    executor: Executor | None = None,
    store: Store | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    on_start: Callable[[int | None], None] | None = None,
) -> SearchResult:
    """Search from ``base`` under ``constraints`` for the front of ``objectives``.

    ``steps``: children to evaluate (the start and promotions come on top); ``budget_minutes``: stop
    starting new evaluations after this much time (either or both). ``latency`` defaults to a
    prediction on ``constraints.device``; ``task`` to ``ProxyTask()``. With a ``store`` every evaluation
    is committed as it finishes (``result.search_id`` names the search for ``resume_search``).
    ``cancel`` stops after the evaluation under way; the search can then be resumed. ``on_start`` is
    called with the search's id (None without a store) before the first evaluation, so that a caller
    running it in the background can read its evaluations from the store while it runs.
    """
    constraints = constraints or Constraints()
    latency = latency or LatencySettings(device=constraints.device)
    config = search_config(base, objectives, constraints=constraints, task=task or ProxyTask(),
                           latency=latency, steps=steps, budget_minutes=budget_minutes, population=population,
                           sample=sample, seed=seed, batch=batch)
    _check_sources(config)
    journal = StoreJournal.start(store, config) if store is not None else MemoryJournal()
    if on_start is not None:
        on_start(journal.search_id)
    return run_search(config, token=latency.token, executor=executor, journal=journal, progress=progress,
                      cancel=cancel)


def resume_search(
    store: Store,
    search_id: int,
    *,
    steps: int | None = None,
    budget_minutes: float | None = None,
    token: str = "",
    executor: Executor | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> SearchResult:
    """Continue stored search ``search_id`` where it stopped, evaluating nothing it has stored.

    ``steps`` / ``budget_minutes`` replace the stored budget (to extend a finished search); ``token``
    is the board's (tokens are never stored).
    """
    config = SearchConfig.model_validate(StoreJournal.stored_config(store, search_id))
    update: dict[str, object] = {}
    if steps is not None:
        update["steps"] = steps
    if budget_minutes is not None:
        update["budget_minutes"] = budget_minutes
        update["steps"] = steps
    if update:
        config = SearchConfig.model_validate({**config.model_dump(), **update})
    if config.latency.mode == "remote" and not token:
        raise ValueError(f"search {search_id} measures latency on {config.latency.url}: give --token again "
                         "(tokens are never stored)")
    _check_sources(config)
    journal = StoreJournal.resume(store, search_id, config)
    return run_search(config, token=token, executor=executor, journal=journal, progress=progress, cancel=cancel)
