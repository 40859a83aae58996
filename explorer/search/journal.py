"""A search's journal in the store: every evaluation committed as it finishes, read back on a resume.

The store holds a search as one ``searches`` row (its configuration, without any token; its status;
the time it has run) and one ``candidates`` row per evaluation (a new design at rung 0, or a
promotion of one to a longer rung), each written in its own transaction the moment its result
arrives. Latency measurements go to the store's ``latency`` table keyed by the design (name-free,
``engine.design_key``) and the measuring settings, so a design is never measured twice with the same
settings, in this search or any later one.
"""

from __future__ import annotations

from typing import Any

from ..spec import ArchitectureSpec
from ..store import Store
from .engine import SearchConfig
from .task import SETTINGS_KEYS

__all__ = ["StoreJournal"]


class StoreJournal:
    """The ``Journal`` of a search stored in a :class:`~explorer.store.Store`."""

    def __init__(self, store: Store, search_id: int, prior_seconds: float = 0.0) -> None:
        self.store = store
        self.search_id: int | None = search_id
        self.prior_seconds = prior_seconds

    @classmethod
    def start(cls, store: Store, config: SearchConfig) -> StoreJournal:
        """A new search, status ``running``, owned by this process."""
        return cls(store, store.start_search(config.stored(), ",".join(config.objectives), config.base_yaml))

    @staticmethod
    def stored_config(store: Store, search_id: int) -> dict[str, Any]:
        """The stored configuration of search ``search_id`` (``ValueError`` if there is none)."""
        return dict(store.get_search(search_id)["config"])

    @classmethod
    def resume(cls, store: Store, search_id: int, config: SearchConfig) -> StoreJournal:
        """Take search ``search_id`` over (``running`` again, owned by this process), with the budget of ``config``."""
        row = store.reopen_search(search_id, config.stored())
        return cls(store, search_id, float(row["elapsed_s"] or 0.0))

    def stored(self) -> dict[int, dict[str, Any]]:
        assert self.search_id is not None
        return {int(r["seq"]): r for r in self.store.search_evaluations(self.search_id)}

    def record(self, seq: int, meta: dict[str, Any], result: dict[str, Any], elapsed_s: float,
               spec: ArchitectureSpec) -> None:
        assert self.search_id is not None
        self.store.record_evaluation(self.search_id, seq, spec, meta, result, elapsed_s)

    def cached_latency(self, design: str, settings: dict[str, Any]) -> float | None:
        return self.store.find_latency(design, settings)

    def save_latency(self, spec: ArchitectureSpec, design: str, measurement: dict[str, Any]) -> None:
        design_id = self.store.save_design(spec)
        settings = {k: measurement[k] for k in SETTINGS_KEYS}
        extra = {k: v for k, v in measurement.items() if k not in ("median_ms", "p90_ms", "cv")}
        self.store.save_latency(design_id, str(settings["backend"]), str(settings["device"]),
                                float(measurement["median_ms"]), threads=int(settings["threads"]),
                                runs=int(settings["runs"]), p90_ms=measurement.get("p90_ms"), cv=measurement.get("cv"),
                                extra={**extra, "design_key": design, "settings": settings})

    def finish(self, status: str, error: str | None = None) -> None:
        assert self.search_id is not None
        self.store.finish_search(self.search_id, status, error)
