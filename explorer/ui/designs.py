"""My designs: every design the explorer shows is kept in the store, and any of them reopens.

``keep(spec_yaml, origin)`` hands a design to the keeper, a background thread that stores it
(``Store.keep_design``: deduplicated by the hash of its canonical JSON, marked used now) with its
count (``Store.save_analysis``, once per design and input size), so an edit never waits for the
disk. Nothing is kept until a keeper is installed (``install_keeper``: ``explorer.ui.app.launch``
installs one on the UI's store; tests install one on a temporary store).

The panel's callbacks are plain functions: ``on_list_designs`` (the table and the picker),
``on_open_design`` (the design's YAML for the editor, whose change event validates and applies
it), ``on_rename_design`` (the name the user chose; the spec's own name is left as it is).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from datetime import datetime
from typing import Any

from ..spec import SpecError
from ..store import DesignRow, Store, StoreError
from .state import load_state
from .worker import analyze_bounded

__all__ = [
    "MY_DESIGN_HEADERS",
    "DesignKeeper",
    "design_label",
    "install_keeper",
    "keep",
    "keeper",
    "on_list_designs",
    "on_open_design",
    "on_pin_kept_design",
    "on_rename_design",
    "record_latency",
]

MY_DESIGN_HEADERS = ["id", "name", "from", "params (M)", "GMACs", "input", "last opened"]
#: designs waiting to be written; past this an edit's design is dropped rather than wait (the disk is stuck)
QUEUE_MAX = 256


class DesignKeeper:
    """A thread that writes the designs handed to it into ``store``, in order."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.errors: list[str] = []
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue(QUEUE_MAX)
        self._thread = threading.Thread(target=self._work, name="design-keeper", daemon=True)
        self._thread.start()

    def put(self, spec_yaml: str, origin: str) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait((spec_yaml, origin))

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every design handed over so far is written (tests; shutting down)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._keep(*item)
            except (StoreError, SpecError, ValueError) as exc:  # kept for the status; never stops the UI
                self.errors = [*self.errors[-9:], str(exc)]
            finally:
                self._queue.task_done()

    def _keep(self, text: str, origin: str) -> None:
        design_id = self.store.keep_design(text, origin)
        spec = load_state(text)
        size = spec.input.size if isinstance(spec.input.size, int) else spec.input.size[-1]
        if not any(r["input_size"] == size for r in self.store.list_analyses(design_id)):
            self.store.save_analysis(design_id, analyze_bounded(spec))


_KEEPER: DesignKeeper | None = None


def install_keeper(store: Store | None) -> DesignKeeper | None:
    """Keep designs in ``store`` from now on (``None``: stop keeping); the keeper, to flush or close."""
    global _KEEPER
    old, _KEEPER = _KEEPER, (DesignKeeper(store) if store is not None else None)
    if old is not None:
        old.close()
    return _KEEPER


def keeper() -> DesignKeeper | None:
    """The installed keeper, if any."""
    return _KEEPER


def keep(spec_yaml: str | None, origin: str) -> None:
    """Hand a design the page now shows to the keeper (nothing happens without one)."""
    k = _KEEPER
    if k is not None and spec_yaml:
        k.put(spec_yaml, origin)


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else ""


def design_label(d: DesignRow) -> str:
    """The picker's words for a stored design."""
    return f"#{d.id} {d.name}"


def _store(store: Store | None) -> Store | None:
    if store is not None:
        return store
    k = _KEEPER
    return k.store if k is not None else None


def on_list_designs(store: Store | None = None, limit: int = 200) -> dict[str, Any]:
    """``{my_designs_table, my_designs_choices, my_designs_status}``: the kept designs, last opened first."""
    store = _store(store)
    if store is None:
        return {"my_designs_table": [], "my_designs_choices": [],
                "my_designs_status": "Designs are kept only while the explorer runs with a store."}
    designs = store.recent_designs(limit)
    counts: dict[int, dict[str, Any]] = {}
    for row in store.list_analyses():
        counts[row["design_id"]] = row
    rows = []
    for d in designs:
        a = counts.get(d.id)
        rows.append([d.id, d.name, d.origin or "", round(a["params"] / 1e6, 3) if a else "",
                     round(a["macs"] / 1e9, 3) if a else "", a["input_size"] if a else "",
                     _when(d.last_used_at or d.created_at)])
    return {
        "my_designs_table": rows,
        "my_designs_choices": [(design_label(d), d.id) for d in designs],
        "my_designs_status": f"{len(designs)} design(s) kept in `{store.path}`.",
    }


def on_open_design(design_id: Any, store: Store | None = None) -> dict[str, Any]:
    """``{my_designs_status[, editor]}``: the kept design's YAML for the editor (which applies it)."""
    store = _store(store)
    if store is None:
        return {"my_designs_status": "No store: nothing is kept."}
    if design_id in (None, ""):
        return {"my_designs_status": "Pick a design in the list first."}
    try:
        d = store.get_design(int(design_id))
    except (ValueError, TypeError, StoreError) as exc:
        return {"my_designs_status": f"**Cannot open:** {exc}"}
    return {"my_designs_status": f"Opened **{d.name}** (#{d.id}).", "editor": d.spec_yaml}


def on_pin_kept_design(design_id: Any, store: Store | None = None) -> dict[str, Any]:
    """The kept design to pin as the baseline: ``{status[, pin_yaml, pin_label]}`` (see ``on_pin_found``)."""
    store = _store(store)
    if store is None:
        return {"status": "No store: nothing is kept."}
    if design_id in (None, ""):
        return {"status": "Pick a design in the list first."}
    try:
        d = store.get_design(int(design_id))
    except (ValueError, TypeError, StoreError) as exc:
        return {"status": f"**Cannot pin:** {exc}"}
    return {"status": "", "pin_yaml": d.spec_yaml, "pin_label": f"{d.name} (#{d.id})"}


def on_rename_design(design_id: Any, name: str | None, store: Store | None = None) -> dict[str, Any]:
    """Rename a kept design; the refreshed list, or one line saying what to fix."""
    store = _store(store)
    if store is None:
        return {"my_designs_status": "No store: nothing is kept."}
    if design_id in (None, ""):
        return {"my_designs_status": "Pick a design in the list, then type its new name."}
    try:
        d = store.rename_design(int(design_id), name or "")
    except (ValueError, TypeError, StoreError) as exc:
        return {"my_designs_status": f"**Not renamed:** {exc}"}
    out = on_list_designs(store)
    out["my_designs_status"] = f"Renamed #{d.id} to **{d.name}**."
    return out


def record_latency(spec_yaml: str, stats: dict[str, Any], where: str, store: Store | None = None) -> int | None:
    """Store one latency measurement of the design shown (for the History tab); its id, or ``None`` without a store.

    ``stats`` is what ``explorer.latency.measure`` returns (``median_ms``, ``p90_ms``, ``cv``, ``runs``,
    ``threads``, ``backend``, ``device``); ``where`` says where it ran ("this machine", "board HOST:PORT").
    """
    store = _store(store)
    if store is None or not isinstance(stats.get("median_ms"), (int, float)):
        return None
    device = stats.get("device")
    cpu = device.get("cpu") if isinstance(device, dict) else device
    try:
        design_id = store.keep_design(spec_yaml, "latency")
        return store.save_latency(
            design_id, str(stats.get("backend", "onnxruntime-cpu")), f"{where}: {cpu}" if cpu else where,
            float(stats["median_ms"]), threads=stats.get("threads"), runs=stats.get("runs"),
            p90_ms=stats.get("p90_ms"), cv=stats.get("cv"), extra={"where": where, "device": device, "batch": 1})
    except (StoreError, ValueError, SpecError):
        return None
