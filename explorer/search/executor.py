"""Executors: who runs ``evaluate_candidate``. The search hands one a batch of jobs (plain data) and
commits each result as it comes back, in whatever order; it then applies the batch in job order, so
the search is the same whichever executor ran it.

``InProcessExecutor`` evaluates here, one job after the other. A distributed executor (Ray tasks,
a later part) implements the same two members.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from .evaluate import evaluate_candidate

__all__ = ["Executor", "InProcessExecutor"]

Job = dict[str, Any]
Result = dict[str, Any]


class Executor(Protocol):
    """Runs evaluation jobs; yields ``(position in jobs, result)`` as each one finishes."""

    name: str

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, Result]]: ...


class InProcessExecutor:
    """Evaluate in this process, in order (``evaluate`` is replaceable, e.g. by tests)."""

    name = "in-process"

    def __init__(self, evaluate: Callable[[Job], Result] = evaluate_candidate) -> None:
        self.evaluate = evaluate

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[int, Result]]:
        for i, job in enumerate(jobs):
            yield i, self.evaluate(job)
