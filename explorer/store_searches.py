"""The store's design searches: the ``searches`` and ``candidates`` tables (a mixin of ``Store``).

::

    searches   (id, base_design_id → designs, objectives, config_json, status, started_at, finished_at,
                elapsed_s, pid, proc_start, host, error)
    candidates (id, search_id → searches, seq, candidate, kind, design_id → designs, design_key,
                fidelity_steps, params, macs, peak_activation_bytes, latency_ms, accuracy, feasible,
                reasons_json, seed, seconds, worker, json, created_at; UNIQUE (search_id, seq))

A ``candidates`` row is one evaluation: ``kind`` ``start`` (the starting design), ``child`` (a new design,
its free signals and its first training rung) or ``promotion`` (the same design trained longer);
``candidate`` numbers the design within its search, ``seq`` the evaluation. ``json`` holds what the
search needs to replay it (``explorer.search.journal``). A search's status is one of
``running | finished | stopped | interrupted | failed``; one left ``running`` by a process that no
longer exists is marked ``interrupted`` when the store is next opened, and can be resumed.

Latency measurements a search makes go to the ``latency`` table with ``design_key`` (the design without
its name) and the measuring ``settings`` in their JSON; :meth:`SearchTables.find_latency` looks them up.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["SEARCH_STATUSES", "SearchTables"]

SEARCH_STATUSES = ("running", "finished", "stopped", "interrupted", "failed")


class SearchTables:
    """Methods of :class:`explorer.store.Store` for searches (it supplies the members declared here)."""

    path: Path
    _tx: Callable[[], Any]
    _query: Callable[..., list[sqlite3.Row]]
    save_design: Callable[..., int]
    _owner: Callable[[], tuple[int, str | None, str]]  # (pid, its start time, host) of this process
    _owner_alive: Callable[[int | None, str | None], bool]

    def start_search(self, config: Mapping[str, Any], objectives: str, base_spec_yaml: str) -> int:
        """A new search, status ``running``, owned by this process; returns its id."""
        base_id = self.save_design(base_spec_yaml)
        pid, proc_start, host = self._owner()
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO searches (base_design_id, objectives, config_json, status, started_at, pid, proc_start, "
                "host) VALUES (?, ?, ?, 'running', ?, ?, ?, ?)",
                (base_id, objectives, json.dumps(dict(config), default=str), time.time(), pid, proc_start, host))
            return int(cur.lastrowid)

    def _search_row(self, search_id: int) -> sqlite3.Row:
        rows = self._query("SELECT * FROM searches WHERE id = ?", (int(search_id),))
        if not rows:
            raise ValueError(f"no search {search_id} in {self.path}; `explorer searches` lists what is stored")
        return rows[0]

    def get_search(self, search_id: int) -> dict[str, Any]:
        """One search: its row (``config`` parsed) and its counts."""
        return self._search_dict(self._search_row(search_id))

    def _search_dict(self, row: sqlite3.Row) -> dict[str, Any]:
        out = dict(row)
        out["config"] = json.loads(out.pop("config_json") or "{}")
        counts = self._query(
            "SELECT count(*) AS evaluations, count(DISTINCT candidate) AS candidates, "
            "count(DISTINCT CASE WHEN kind != 'promotion' AND feasible THEN candidate END) AS feasible, "
            "count(DISTINCT CASE WHEN kind != 'promotion' AND NOT feasible THEN candidate END) AS rejected, "
            "coalesce(max(fidelity_steps), 0) AS max_fidelity_steps FROM candidates WHERE search_id = ?",
            (out["id"],))[0]
        out["counts"] = dict(counts)
        return out

    def list_searches(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest searches first, each with its counts."""
        rows = self._query("SELECT * FROM searches ORDER BY id DESC LIMIT ?", (int(limit),))
        return [self._search_dict(r) for r in rows]

    def reopen_search(self, search_id: int, config: Mapping[str, Any]) -> dict[str, Any]:
        """Take a stored search over to resume it: ``running`` again, owned by this process, with ``config``.

        Refused (``ValueError``) while another live process runs it.
        """
        row = self._search_row(search_id)
        if row["status"] == "running" and self._owner_alive(row["pid"], row["proc_start"]) \
                and row["host"] in (None, socket.gethostname()) and row["pid"] != os.getpid():
            raise ValueError(f"search {search_id} is running in process {row['pid']}; wait for it to end or stop it "
                             "before resuming")
        pid, proc_start, host = self._owner()
        with self._tx() as c:
            c.execute("UPDATE searches SET status = 'running', finished_at = NULL, error = NULL, pid = ?, "
                      "proc_start = ?, host = ?, config_json = ? WHERE id = ?",
                      (pid, proc_start, host, json.dumps(dict(config), default=str), int(search_id)))
        return self.get_search(search_id)

    def record_evaluation(self, search_id: int, seq: int, spec: Any, meta: Mapping[str, Any],
                          result: Mapping[str, Any], elapsed_s: float) -> int:
        """Commit one evaluation of search ``search_id`` (and the time the search has run); returns its row id.

        ``spec``: the design (YAML text or an ``ArchitectureSpec``, as ``save_design`` takes it); ``meta``:
        ``candidate, kind, design_key, fidelity_steps, seed`` and what else replays it; ``result``:
        ``explorer.search.EvalResult`` as a dict.
        """
        design_id = self.save_design(spec)
        record = dict(meta)
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO candidates (search_id, seq, candidate, kind, design_id, design_key, fidelity_steps, "
                "params, macs, peak_activation_bytes, latency_ms, accuracy, feasible, reasons_json, seed, seconds, "
                "worker, json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (int(search_id), int(seq), int(meta["candidate"]), str(meta["kind"]), design_id,
                 str(meta["design_key"]), int(meta["fidelity_steps"]), int(result["params"]), int(result["macs"]),
                 int(result["peak_activation_bytes"]), result.get("latency_ms"), result.get("accuracy"),
                 int(bool(result["feasible"])), json.dumps(list(result.get("reasons", []))), int(meta["seed"]),
                 float(dict(result.get("seconds", {})).get("total", 0.0)), str(result.get("worker", "")),
                 json.dumps({**record, "result": dict(result)}, default=str), time.time()))
            c.execute("UPDATE searches SET elapsed_s = max(elapsed_s, ?) WHERE id = ?", (float(elapsed_s),
                                                                                         int(search_id)))
            return int(cur.lastrowid)

    def search_evaluations(self, search_id: int) -> list[dict[str, Any]]:
        """Every evaluation of a search in ``seq`` order: its JSON (meta, ``result``), ``seq`` and ``design_id``."""
        rows = self._query("SELECT seq, design_id, json FROM candidates WHERE search_id = ? ORDER BY seq",
                           (int(search_id),))
        return [{**json.loads(r["json"]), "seq": r["seq"], "design_id": r["design_id"]} for r in rows]

    def finish_search(self, search_id: int, status: str, error: str | None = None) -> None:
        """Close a search: ``finished``, ``stopped`` (resumable), ``failed`` (with ``error``) …"""
        if status not in SEARCH_STATUSES or status == "running":
            raise ValueError(f"status {status!r}: use one of {', '.join(s for s in SEARCH_STATUSES if s != 'running')}")
        with self._tx() as c:
            c.execute("UPDATE searches SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                      (status, time.time(), error, int(search_id)))

    def mark_searches_interrupted(self) -> list[int]:
        """Searches left ``running`` by a process of this host that no longer exists -> ``interrupted``."""
        host = socket.gethostname()
        marked = []
        for r in self._query("SELECT id, pid, proc_start, host FROM searches WHERE status = 'running'"):
            if r["host"] not in (None, host) or self._owner_alive(r["pid"], r["proc_start"]):
                continue
            with self._tx() as c:
                c.execute("UPDATE searches SET status = 'interrupted', error = ? WHERE id = ? AND status = 'running'",
                          ("the search process ended without closing the search (killed or crashed); "
                           f"`explorer search --resume {r['id']}` continues it", r["id"]))
            marked.append(int(r["id"]))
        return marked

    def find_latency(self, design_key: str, settings: Mapping[str, Any]) -> float | None:
        """The latest stored median latency (ms) of the design ``design_key`` measured with ``settings``
        (``backend, device, threads, runs, warmup``), or None."""
        rows = self._query(
            "SELECT median_ms FROM latency WHERE backend = ? AND device = ? AND threads = ? AND runs = ? "
            "AND json_extract(json, '$.design_key') = ? AND json_extract(json, '$.settings.warmup') = ? "
            "ORDER BY id DESC LIMIT 1",
            (str(settings["backend"]), str(settings["device"]), int(settings["threads"]), int(settings["runs"]),
             design_key, int(settings["warmup"])))
        return float(rows[0]["median_ms"]) if rows else None
