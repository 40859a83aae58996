"""The UI's analyses in worker processes, each cut at a wall-clock bound and a memory bound.

An edit's design is counted (``explorer.analysis.analyze``: fvcore traces every changed unit
and runs it on real tensors) in one of a few long-lived worker processes. A thread cannot be
stopped once a huge count has started; a process can: an analysis that is not done within
``timeout_s`` is refused with ``timeout_message`` (a ``SpecError``, shown in the edit's error
box) and its worker is killed and replaced, while the other workers keep serving the other
sessions. Each worker also runs under an address-space limit (``memory_bytes``), so a count
that would exhaust the machine fails with ``memory_message`` instead. These bounds are the
second line: ``explorer.limits`` refuses designs past the size limits before anything is
allocated; the worker bounds what gets through.

A worker keeps its own per-unit count cache and counts with one torch thread (several
workers share the cores; torch's thread pool on a busy 2-core machine made a cold count over
10x slower). A worker is picked for a session by affinity (the one that last counted this
session's designs is warm for its next edit), else the one used most recently. Whole results
are remembered here by design (``REMEMBERED_MAX``), so the "before" numbers of an edit, and
any tab asking for the current design again, are not counted twice.

The app starts the pool (``explorer.ui.app.launch``: the workers start while the first page is
counted here, then ``install``); ``analyze_bounded`` is the UI's one way to count a design.
Without a pool (tests, notebooks) it counts in this process, unbounded. ``session_affinity`` (a
context manager) names the session whose edit is running, for the affinity.
"""

from __future__ import annotations

import contextlib
import contextvars
import multiprocessing
import resource
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ..analysis import Analysis, Progress, analyze
from ..edit import empty_spec
from ..spec import ArchitectureSpec, SpecError

__all__ = [
    "ANALYSIS_TIMEOUT_S",
    "REMEMBERED_MAX",
    "WORKERS",
    "WORKER_MEMORY_BYTES",
    "AnalysisPool",
    "analyze_bounded",
    "install",
    "memory_message",
    "remember_analysis",
    "running_pool",
    "session_affinity",
    "start",
    "stop",
    "timeout_message",
]

#: wall-clock bound of one analysis in a worker (seconds; a cold count of a preset takes about 1 s)
ANALYSIS_TIMEOUT_S = 20.0
#: worker processes: one edit that runs to the bound holds one of them, the others keep serving
WORKERS = 2
#: address-space limit of each worker (torch and fvcore take under 1 GiB of it before counting)
WORKER_MEMORY_BYTES = 6 << 30
#: a worker that has not said it is ready this long after it started is given up on
START_TIMEOUT_S = 180.0
#: whole analyses remembered by design, across sessions
REMEMBERED_MAX = 256

#: ``(spec, progress) -> Analysis``: what a worker runs (a module-level function, picklable by name)
Target = Callable[[ArchitectureSpec, Progress | None], Analysis]

_AFFINITY: contextvars.ContextVar[str | None] = contextvars.ContextVar("explorer_analysis_affinity", default=None)


def timeout_message(seconds: float) -> str:
    """The one-line refusal of an analysis cut at the bound."""
    return (f"this design took longer than {seconds:g} s to analyse, so it was not applied; "
            "make it smaller (fewer, narrower or thinner blocks, or a smaller input) and try again")


def memory_message(limit_bytes: int) -> str:
    """The one-line refusal of an analysis that ran out of its memory bound."""
    return (f"this design needs more than {limit_bytes / 2**30:g} GiB of memory to analyse, so it was not "
            "applied; make it smaller (fewer channels or a smaller input) and try again")


# ----------------------------------------------------------------------------- the worker's side


def _is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "can't allocate memory" in text or "cannot allocate memory" in text


def _warm_up() -> None:
    """Validate and count the smallest design once, so a session's first edit does not pay torch's cold start.

    The first run on the meta device loads torch's decompositions and the counters' tables (about
    1 s, several on a busy machine); done here, before the worker says it is ready, it is paid
    while the app starts rather than inside the first edit's time bound.
    """
    with contextlib.suppress(Exception):  # only a warm-up: the real counts report their own errors
        analyze(empty_spec("warm-up"))


def _serve(conn: Connection, target: Target, memory_bytes: int | None) -> None:
    """A worker's loop: receive a spec, send ``progress`` messages, then one answer; until the pipe closes.

    Answers: ``("done", Analysis)``, ``("refused", [messages])`` (a ``SpecError``),
    ``("memory", "")`` (out of the memory bound), ``("error", "Type: first line")`` (a bug).
    """
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the app, which stops its workers
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    torch.set_num_threads(1)
    _warm_up()
    conn.send(("ready", None))
    while True:
        try:
            spec = conn.recv()
        except (EOFError, OSError):
            return

        def report(fraction: float, description: str) -> None:
            conn.send(("progress", (fraction, description)))

        try:
            answer: tuple[str, Any] = ("done", target(spec, report))
        except SpecError as exc:
            answer = ("refused", list(exc.errors))
        except Exception as exc:  # noqa: BLE001 - back to the app as one line; the worker lives on
            answer = ("memory", "") if _is_out_of_memory(exc) else (
                "error", f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}")
        try:
            conn.send(answer)
        except (OSError, ValueError):
            return


# ----------------------------------------------------------------------------- the app's side


@dataclass(eq=False)
class _Worker:
    process: Any
    conn: Connection
    ready: bool = False
    sessions: set[str] = field(default_factory=set)  # the sessions it counted last (affinity)


class AnalysisPool:
    """``processes`` worker processes counting designs, each analysis cut at ``timeout_s``.

    ``analyze(spec, progress)`` blocks until a worker is free (waiting is not counted against
    the bound), then until its answer, at most ``timeout_s``. Thread-safe: the UI's edit
    handlers call it from Gradio's threads.
    """

    def __init__(self, processes: int = WORKERS, timeout_s: float = ANALYSIS_TIMEOUT_S,
                 memory_bytes: int | None = WORKER_MEMORY_BYTES, target: Target = analyze) -> None:
        if processes < 1:
            raise ValueError(f"an analysis pool needs at least 1 process, not {processes}")
        if timeout_s <= 0:
            raise ValueError(f"the analysis bound must be positive seconds, not {timeout_s}")
        self.processes = processes
        self.timeout_s = float(timeout_s)
        self.memory_bytes = memory_bytes
        self.target = target
        self._context = multiprocessing.get_context("spawn")  # never fork a threaded server
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []  # most recently used last
        self._closed = False
        self.replaced = 0  # workers killed at the bound or found dead (for tests and logs)
        for _ in range(processes):
            self._idle.append(self._spawn())

    def _spawn(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(theirs, self.target, self.memory_bytes),
                                        name="explorer-analysis", daemon=True)
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def _acquire(self, session: str | None) -> _Worker:
        with self._cond:
            while not self._idle:
                if self._closed:
                    raise SpecError("the server is shutting down; reload the page")
                self._cond.wait()
            if self._closed:
                raise SpecError("the server is shutting down; reload the page")
            chosen = next((w for w in reversed(self._idle) if session is not None and session in w.sessions),
                          self._idle[-1])
            self._idle.remove(chosen)
            return chosen

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            if self._closed:
                _kill(worker)
                return
            self._idle.append(worker)
            self._cond.notify()

    def _replace(self, worker: _Worker) -> None:
        _kill(worker)
        self.replaced += 1
        with self._cond:
            if self._closed:
                return
        fresh = self._spawn()
        self._release(fresh)

    def _wait_ready(self, worker: _Worker) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not worker.ready:
            left = deadline - time.monotonic()
            if left <= 0 or not worker.conn.poll(min(left, 1.0)):
                if not worker.process.is_alive() or left <= 0:
                    raise SpecError("the analysis process did not start; see the server's log and restart it")
                continue
            kind, _ = worker.conn.recv()
            worker.ready = kind == "ready"

    def wait_ready(self) -> None:
        """Block until every idle worker has started (imported torch and warmed up); ``SpecError`` if one did not.

        The app need not call it (an edit waits for its worker); a caller timing edits calls it first,
        so that start-up is not counted as an edit's time.
        """
        with self._cond:
            waiting, self._idle = self._idle, []
        try:
            for worker in waiting:
                self._wait_ready(worker)
        finally:
            for worker in waiting:
                self._release(worker)

    def analyze(self, spec: ArchitectureSpec, progress: Progress | None = None) -> Analysis:
        """Count ``spec`` in a worker: its ``Analysis``, or ``SpecError`` (refused, past a bound)."""
        session = _AFFINITY.get()
        worker = self._acquire(session)
        healthy = False
        try:
            try:
                self._wait_ready(worker)
            except (EOFError, OSError):
                raise SpecError("the analysis process stopped while starting; see the server's log") from None
            try:
                worker.conn.send(spec)
            except OSError:
                raise SpecError("the analysis process had stopped and was restarted; apply the edit again") from None
            deadline = time.monotonic() + self.timeout_s
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not worker.conn.poll(left):
                    raise SpecError(timeout_message(self.timeout_s))
                try:
                    kind, value = worker.conn.recv()
                except (EOFError, OSError):
                    limit = self.memory_bytes
                    raise SpecError(memory_message(limit) if limit else
                                    "the analysis process stopped (out of memory?); make the design smaller") from None
                if kind == "progress":
                    if progress is not None:
                        progress(*value)
                    continue
                healthy = True
                if kind == "done":
                    if session is not None:
                        worker.sessions.add(session)
                        if len(worker.sessions) > 64:
                            worker.sessions.pop()
                    return value
                if kind == "refused":
                    raise SpecError(value)
                if kind == "memory":
                    raise SpecError(memory_message(self.memory_bytes or 0))
                raise RuntimeError(f"analysing {spec.name} failed in the worker: {value}")
        finally:
            if healthy:
                self._release(worker)
            else:
                self._replace(worker)

    def close(self) -> None:
        """Stop every worker (those busy are stopped when their analysis returns)."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            _kill(worker)


def _kill(worker: _Worker) -> None:
    with contextlib.suppress(OSError, ValueError):
        worker.conn.close()
    if worker.process.is_alive():
        worker.process.kill()
    worker.process.join(timeout=10)


# ----------------------------------------------------------------------------- the one entry point

_POOL: AnalysisPool | None = None
_POOL_LOCK = threading.Lock()
_RESULTS: OrderedDict[str, Analysis] = OrderedDict()
_RESULTS_LOCK = threading.Lock()


def install(pool: AnalysisPool | None) -> None:
    """Make ``pool`` the one ``analyze_bounded`` uses (``None``: count in this process); the old one is stopped."""
    global _POOL
    with _POOL_LOCK:
        old, _POOL = _POOL, pool
    if old is not None and old is not pool:
        old.close()


def start(processes: int = WORKERS, timeout_s: float = ANALYSIS_TIMEOUT_S,
          memory_bytes: int | None = WORKER_MEMORY_BYTES, target: Target = analyze) -> AnalysisPool:
    """Start a worker pool and install it; remembered results are dropped (another target counts differently)."""
    pool = AnalysisPool(processes, timeout_s, memory_bytes, target)
    install(pool)
    with _RESULTS_LOCK:
        _RESULTS.clear()
    return pool


def stop() -> None:
    """Stop the pool; ``analyze_bounded`` counts in this process again."""
    install(None)
    with _RESULTS_LOCK:
        _RESULTS.clear()


def running_pool() -> AnalysisPool | None:
    """The pool ``analyze_bounded`` uses, if one was started."""
    return _POOL


@contextlib.contextmanager
def session_affinity(session: str | None) -> Iterator[None]:
    """Within this block, analyses prefer the worker that counted ``session``'s designs before."""
    token = _AFFINITY.set(session)
    try:
        yield
    finally:
        _AFFINITY.reset(token)


def remember_analysis(spec: ArchitectureSpec, analysis: Analysis) -> None:
    """Answer ``analyze_bounded(spec)`` with ``analysis`` from now on (a count read from the disk cache)."""
    with _RESULTS_LOCK:
        _RESULTS[spec.model_dump_json()] = analysis
        while len(_RESULTS) > REMEMBERED_MAX:
            _RESULTS.popitem(last=False)


def analyze_bounded(spec: ArchitectureSpec, progress: Progress | None = None) -> Analysis:
    """``analyze(spec)`` for the UI: in a worker under the bounds when the pool runs, else here.

    A design counted before (by any session) is answered from memory. Raises ``SpecError``
    with ``timeout_message`` or ``memory_message`` past a bound.
    """
    key = spec.model_dump_json()
    with _RESULTS_LOCK:
        known = _RESULTS.get(key)
        if known is not None:
            _RESULTS.move_to_end(key)
    if known is not None:
        if progress is not None:
            progress(1.0, "done")
        return known
    pool = _POOL
    result = pool.analyze(spec, progress) if pool is not None else analyze(spec, progress)
    with _RESULTS_LOCK:
        _RESULTS[key] = result
        while len(_RESULTS) > REMEMBERED_MAX:
            _RESULTS.popitem(last=False)
    return result
