"""Evaluate candidates as Ray tasks: the search's scale-out (``explorer search … --ray auto|HOST:PORT``).

:class:`RayExecutor` implements the :class:`~explorer.search.executor.Executor` protocol with Ray core:
each job (plain data, see ``evaluate.EvalJob``) becomes one task ``evaluate_candidate(job)`` that
reserves ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs on whichever node has them free; results
come back as each task finishes, and the driver (this process) alone writes the store. A task runs
``⌊cpus_per_trial⌋`` torch threads (at least 1). A trial trains on CUDA exactly when Ray gave it a GPU
(``ray.get_gpu_ids()`` on the worker), else on the CPU: recent Ray (2.60 here) no longer hides the GPUs
from a task that asked for none, so the device is set in the job explicitly.

Failure model. A worker that dies mid-evaluation (killed, out of memory, its node lost) is retried once
by Ray (``max_retries=1``); if the retry dies too, the candidate is marked infeasible with the reason
``worker died: …`` (its free signals counted here, when the design can be analysed) and the search goes
on. An exception raised *by the evaluation* (a board that cannot be reached, …) is not retried: it
stops the search as it would in process.

``address``: ``"auto"`` uses the Ray this process has already started (a test's, a notebook's), else
starts a private local one on this machine, bound to 127.0.0.1, without the dashboard, shut down by
:meth:`RayExecutor.close`; ``"HOST:PORT"`` (or ``ray://HOST:PORT``) joins a running cluster
(``ray start --head --port=6379``). A bad or unreachable address raises :class:`RayUnavailableError`
(a ``ValueError`` with a one-line message).

Ray has no authentication: anyone who can reach the head's ports can run code on the cluster. Keep a
cluster on a private network; the local Ray that ``auto`` starts listens on 127.0.0.1 only.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..analysis import analyze
from ..design import load_design
from ..spec import SpecError
from .evaluate import EvalResult, evaluate_candidate
from .executor import Job, Result

__all__ = ["RayExecutor", "RayUnavailableError", "parse_address"]

#: how long a TCP connection to a cluster's head may take before the address counts as unreachable
CONNECT_TIMEOUT_S = 5.0
_ADDRESS = re.compile(r"^(?:ray://)?(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):(?P<port>\d{1,5})$")


class RayUnavailableError(ValueError):
    """Ray cannot be used as asked (not installed, a bad address, no cluster there, too few resources)."""


def parse_address(address: str) -> tuple[str, int] | None:
    """``None`` for ``"auto"``, else ``(host, port)`` of ``HOST:PORT`` or ``ray://HOST:PORT``."""
    if address == "auto":
        return None
    match = _ADDRESS.match(address.strip())
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise RayUnavailableError(f"--ray {address!r}: give auto (a local Ray on this machine) or the head's "
                                  "HOST:PORT, e.g. 10.0.0.5:6379")
    return match["host"].strip("[]"), int(match["port"])


def _import_ray(loopback: bool = False) -> Any:
    """Import Ray, without usage reports (no network at run time); ``loopback``: a node started from here
    advertises and listens on 127.0.0.1 only (Ray's own switch for a single-machine Ray, read at import
    and at start)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if loopback:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        import ray
        from ray._private import ray_constants
    except ImportError:
        raise RayUnavailableError("--ray needs Ray installed (pip install 'ray>=2.40'); or drop --ray to evaluate "
                             "here") from None
    if loopback:  # Ray was imported before this call: its constant was read then
        ray_constants.ENABLE_RAY_CLUSTER = False
    return ray


def _ray_running() -> bool:
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def _evaluate_on_worker(evaluate: Callable[[Job], Result], job: Job) -> Result:
    """The Ray task: as many torch threads as CPUs reserved (a reused worker keeps the ``OMP_NUM_THREADS`` of
    its first task), CUDA only if Ray reserved a GPU for it; the worker is named (node IP, host:pid)."""
    import ray
    import torch

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, math.floor(cpus + 1e-9)))
    job = {**job, "train_device": "cuda" if ray.get_gpu_ids() else "cpu"}
    result = evaluate(job)
    result["worker"] = f"ray {ray.util.get_node_ip_address()} {socket.gethostname()}:{os.getpid()}"
    return result


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    for marker in (" Check python-core-worker", " Worker exit type", " Please see"):
        text = text.split(marker)[0]
    return text[:300] or type(exc).__name__


class RayExecutor:
    """Evaluate jobs as Ray tasks (see the module docstring); use as a context manager or call ``close``."""

    name = "ray"

    def __init__(self, address: str = "auto", *, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                 max_retries: int = 1, num_cpus: int | None = None,
                 evaluate: Callable[[Job], Result] = evaluate_candidate) -> None:
        if not cpus_per_trial > 0:
            raise RayUnavailableError(f"--ray-cpus-per-trial {cpus_per_trial:g} must be above 0")
        if gpus_per_trial < 0:
            raise RayUnavailableError(f"--ray-gpus-per-trial {gpus_per_trial:g} must be 0 or more")
        if gpus_per_trial > 1 and gpus_per_trial != int(gpus_per_trial):
            raise RayUnavailableError(f"--ray-gpus-per-trial {gpus_per_trial:g}: above 1, give a whole number of GPUs")
        self.address = address
        self.where = parse_address(address)
        self.cpus_per_trial, self.gpus_per_trial = float(cpus_per_trial), float(gpus_per_trial)
        self.max_retries = max_retries
        self.num_cpus = num_cpus  # of the local Ray that ``auto`` starts (None: all of this machine's)
        self.evaluate = evaluate
        self.started = False  # this executor started Ray (and shuts it down)
        self._ray: Any = None
        self._task: Any = None

    # -- connection

    def connect(self) -> RayExecutor:
        """Start or join Ray (see the module docstring) and check that one trial fits; idempotent."""
        if self._ray is not None:
            return self
        if self.where is not None:
            self._check_reachable(*self.where)
        ray = _import_ray(loopback=self.where is None and not _ray_running())
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False, "configure_logging": True}
        try:
            if ray.is_initialized():
                pass  # this process already runs Ray (a test's fixture, a notebook): use it
            elif self.where is None:  # loopback only (see _import_ray): nothing listens on other interfaces
                # workers at the driver's priority: Ray's default (nice 15) starves them on a shared machine
                ray.init(num_cpus=self.num_cpus, include_dashboard=False, _system_config={"worker_niceness": 0},
                         **quiet)
                self.started = True
            else:
                ray.init(address=self.address, **quiet)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            raise RayUnavailableError(
                f"--ray {self.address}: Ray did not start or connect ({_first_line(exc)})") from None
        self._ray = ray
        try:
            self._check_fits()
        except RayUnavailableError:
            self.close()
            raise
        self._task = ray.remote(_evaluate_on_worker).options(
            num_cpus=self.cpus_per_trial, num_gpus=self.gpus_per_trial, max_retries=self.max_retries,
            retry_exceptions=False)
        return self

    def _check_reachable(self, host: str, port: int) -> None:
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
                pass
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise RayUnavailableError(
                f"--ray {self.address}: no Ray cluster answers there ({why}); start one with "
                "`ray start --head --port=6379` on the head node, or use --ray auto") from None

    def _check_fits(self) -> None:
        if self.slots() < 1:
            total = self._ray.cluster_resources()
            raise RayUnavailableError(
                f"--ray {self.address}: one trial needs {self.cpus_per_trial:g} CPU and {self.gpus_per_trial:g} GPU "
                f"but the cluster has {total.get('CPU', 0):g} CPU and {total.get('GPU', 0):g} GPU; lower "
                "--ray-cpus-per-trial / --ray-gpus-per-trial or add nodes")

    def slots(self) -> int:
        """Trials the cluster runs at once: ``min(⌊CPUs / cpus_per_trial⌋, ⌊GPUs / gpus_per_trial⌋)``."""
        self.connect()
        total = self._ray.cluster_resources()
        fits = [math.floor(total.get("CPU", 0) / self.cpus_per_trial + 1e-9)]
        if self.gpus_per_trial > 0:
            fits.append(math.floor(total.get("GPU", 0) / self.gpus_per_trial + 1e-9))
        return max(0, min(fits))

    def close(self) -> None:
        """Shut Ray down if this executor started it (a joined cluster or a caller's Ray keeps running)."""
        if self.started and self._ray is not None:
            self._ray.shutdown()
        self.started, self._ray, self._task = False, None, None

    def __enter__(self) -> RayExecutor:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- evaluation

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, Result]]:
        """Submit every job at once; yield ``(position, result)`` as each finishes (any order)."""
        self.connect()
        ray = self._ray
        pending = {self._task.remote(self.evaluate, job): i for i, job in enumerate(jobs)}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    i = pending.pop(ref)
                    yield i, self._result(ref, jobs[i])
        finally:
            for ref in pending:  # the caller stopped early (an error, Ctrl-C): do not leave work running
                ray.cancel(ref, force=True)

    def _result(self, ref: Any, job: Job) -> Result:
        from ray import exceptions as rx

        died = (rx.WorkerCrashedError, rx.NodeDiedError, rx.OutOfMemoryError, rx.LocalRayletDiedError,
                rx.ObjectLostError)
        try:
            return dict(self._ray.get(ref))
        except rx.RayTaskError as exc:  # the evaluation raised: as in process, the search stops
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            raise cause from None
        except died as exc:
            return died_result(job, f"worker died: {_first_line(exc)}", attempts=1 + self.max_retries)
        except rx.RayError as exc:
            raise RayUnavailableError(f"--ray {self.address}: {_first_line(exc)}") from None


def died_result(job: Job, reason: str, attempts: int = 2) -> Result:
    """The result of a job whose every attempt died: infeasible with ``reason``; free signals when they count here."""
    known = job.get("known")
    if known:
        params, macs, peak = known["params"], known["macs"], known["peak_activation_bytes"]
        latency = known.get("latency_ms")
    else:
        latency = job.get("latency_ms")
        try:
            analysis = analyze(load_design(job["spec"]))
            params, macs, peak = analysis.params, analysis.macs, analysis.peak_activation_bytes
        except (SpecError, ValueError, RuntimeError):  # the design may be what killed the worker: no numbers
            params = macs = peak = 0
    return EvalResult(seq=job["seq"], params=params, macs=macs, peak_activation_bytes=peak, latency_ms=latency,
                      fidelity_steps=job.get("fidelity_steps", 0), feasible=False,
                      reasons=[f"{reason} ({attempts} attempts)"], worker="ray (died)").model_dump()
