"""The explorer's memory: designs, analyses, latency, proxies and training runs in one SQLite file.

``Store(path)`` opens (or creates) the database; ``path=None`` means ``$EXPLORER_DB`` or
``./runs/explorer.sqlite``. Tables::

    designs   (id, name, spec_yaml, spec_hash UNIQUE, created_at, last_used_at, origin)
    analyses  (id, design_id → designs, input_size, params, macs, peak_activation_bytes, json, created_at)
    latency   (id, design_id → designs, backend, device, threads, runs, median_ms, p90_ms, cv, json, created_at)
    proxies   (id, design_id → designs, input_size, dataset, seed, json, created_at)
    runs      (id, design_id → designs, dataset, config_json, status, started_at, finished_at,
               metrics_json, weights_path, pid, proc_start, host, error)
    run_steps (run_id → runs, step, train_loss, val_accuracy, lr, seconds; PRIMARY KEY (run_id, step))
    searches, candidates: design searches and each evaluation of their candidates (:mod:`explorer.store_searches`)

Nothing is lost: the database runs in WAL mode with ``synchronous=FULL``, and every write is its own
small transaction committed before the call returns, so a process killed at any instant (SIGKILL
included) leaves every row it had written, and the file consistent. A run's status is one of
``running | finished | cancelled | interrupted | failed``; a run left ``running`` by a process that
no longer exists is marked ``interrupted`` when the store is next opened (its steps are kept).

The schema is versioned with ``PRAGMA user_version``: :data:`MIGRATIONS` is an ordered list
(:mod:`explorer.store_schema`), and opening an older file applies the missing ones, each in one
transaction with its version bump. Nothing is written to a file before it has been looked at read-only
(:mod:`explorer.store_check`): version, ``PRAGMA quick_check`` and every table and column its version
promises. Only then is it opened for writing, switched to WAL and migrated. A file that fails is refused
with :class:`StoreError`, one line naming the file, what is wrong and what to do, and is left byte for
byte as it was. Damage found later, by a query, is reported the same way, and the store then refuses
every further write.

This module holds the :class:`Store` and its row dataclasses; every name of the two modules above that
callers use (``StoreError``, ``MIGRATIONS``, ``SCHEMA_VERSION``, ``apply_migration``) is importable from here.

Times are Unix seconds (UTC). Timestamps and JSON are plain text: the file reads in any SQLite tool.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .spec_yaml import parse_spec_text
from .store_check import MOVE_ASIDE as _MOVE_ASIDE
from .store_check import StoreError, too_new
from .store_check import check_file as _check_file
from .store_check import inspect_read_only as _inspect_read_only
from .store_check import unusable as _unusable
from .store_schema import MIGRATIONS, SCHEMA_VERSION, apply_migration
from .store_searches import SEARCH_STATUSES, SearchTables

__all__ = [
    "DEFAULT_DB",
    "MIGRATIONS",
    "RUN_STATUSES",
    "SEARCH_STATUSES",
    "SCHEMA_VERSION",
    "DesignRow",
    "RunRow",
    "StepRow",
    "Store",
    "StoreError",
    "default_db_path",
    "spec_hash",
]

DEFAULT_DB = Path("runs") / "explorer.sqlite"
RUN_STATUSES = ("running", "finished", "cancelled", "interrupted", "failed")
#: the longest name a user may give a stored design
MAX_DESIGN_NAME = 80

def default_db_path() -> Path:
    """``$EXPLORER_DB`` if set, else ``./runs/explorer.sqlite``."""
    env = os.environ.get("EXPLORER_DB", "").strip()
    return Path(env).expanduser() if env else DEFAULT_DB


def spec_hash(spec_yaml: str) -> str:
    """sha256 of the design's canonical JSON (sorted keys): the same design in any YAML layout hashes alike."""
    data = _parse_yaml(spec_yaml)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _parse_yaml(spec_yaml: str) -> dict[str, Any]:
    """The design's mapping, read by the spec layer's parser (``SpecError``, a ``ValueError``, if it is not one)."""
    return parse_spec_text(spec_yaml)


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _proc_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of stat; fields after the command name


def _alive(pid: int | None, proc_start: str | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if proc_start is not None:
        now = _proc_start(pid)
        if now is not None and now != proc_start:
            return False  # the pid was reused by another process
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False  # a zombie: killed, not yet reaped
        except OSError:
            pass
    return True


@dataclass
class DesignRow:
    """A stored design; ``name`` is the one shown (the user may change it), ``spec_yaml`` keeps its own."""

    id: int
    name: str
    spec_yaml: str
    spec_hash: str
    created_at: float
    last_used_at: float | None = None  # when the explorer last showed it (``keep_design``)
    origin: str | None = None  # how it first came: a preset, a link, an upload, an edit, ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepRow:
    """One point of a training curve: ``train_loss`` is the mean over the steps since the last row."""

    step: int
    train_loss: float | None = None
    val_accuracy: float | None = None
    lr: float | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunRow:
    id: int
    design_id: int
    design_name: str
    dataset: str
    status: str
    started_at: float
    finished_at: float | None
    config: dict[str, Any]
    metrics: dict[str, Any]
    weights_path: str | None
    error: str | None = None
    curve: list[StepRow] = field(default_factory=list)

    def to_dict(self, with_curve: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not with_curve:
            out.pop("curve")
        return out


class Store(SearchTables):
    """The SQLite store (see the module docstring). Safe to share between threads of one process."""

    def __init__(self, path: str | Path | None = None, *, mark_interrupted: bool = True) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        memory = str(self.path) == ":memory:"
        if not memory:
            if self.path.is_dir():
                raise ValueError(f"{self.path} is a directory; give the store a file path such as runs/explorer.sqlite")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot make the folder {self.path.parent} for the store ({exc.strerror}); "
                                 "give another --db") from None
        self._lock = threading.RLock()
        self._damaged = False
        checked = memory or not self.path.exists() or _inspect_read_only(self.path)
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path} cannot be opened ({exc}); check its folder's permissions or give another "
                             "--db") from None
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA busy_timeout = 10000")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if not checked:  # a hot rollback journal was rolled back by this connection: check before any write
                _check_file(self._conn, self.path)
            if not memory:
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode}); is it on a network share?")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._migrate()
            if mark_interrupted:
                self.mark_interrupted()
                self.mark_searches_interrupted()
        except sqlite3.Error as exc:
            self._conn.close()
            raise _unusable(self.path, exc) from None
        except BaseException:
            self._conn.close()
            raise

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def _owner() -> tuple[int, str | None, str]:
        """(pid, its start time, host) of this process: who owns a run or a search it starts."""
        pid = os.getpid()
        return pid, _proc_start(pid), socket.gethostname()

    _owner_alive = staticmethod(_alive)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def _tx(self) -> _Transaction:
        return _Transaction(self)

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, tuple(args)).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._failure(exc) from None

    def _failure(self, exc: sqlite3.DatabaseError) -> Exception:
        """An SQLite failure after opening -> ``StoreError`` (one line); a damaged file gets no more writes.

        Constraint and programming errors (``IntegrityError``, ``ProgrammingError``) are the caller's and
        pass through unchanged.
        """
        if type(exc) not in (sqlite3.DatabaseError, sqlite3.OperationalError, sqlite3.DataError):
            return exc
        name = getattr(exc, "sqlite_errorname", "")
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            self._damaged = True
            fix = f"the file is damaged and nothing more is written to it; {_MOVE_ASIDE}"
        elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            fix = "another process holds it locked; try again when that one is done"
        elif name.startswith("SQLITE_FULL"):
            fix = "the disk is full; free some space"
        else:
            fix = "check the file, its folder and the disk"
        return StoreError(f"{self.path}: {exc}; {fix}")

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    def journal_mode(self) -> str:
        return str(self._query("PRAGMA journal_mode")[0][0])

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: 'ok' for a consistent file."""
        return "; ".join(str(r[0]) for r in self._query("PRAGMA integrity_check"))

    def _migrate(self) -> None:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise too_new(self.path, version)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            apply_migration(self._conn, target)

    # ------------------------------------------------------------------ designs

    def save_design(self, spec: Any, name: str | None = None) -> int:
        """Store a design (YAML text or an ``ArchitectureSpec``) and return its id.

        The same design twice gives one row.
        """
        spec_yaml = spec if isinstance(spec, str) else spec.to_yaml()
        data = _parse_yaml(spec_yaml)
        name = name or str(data.get("name") or "design")
        digest = spec_hash(spec_yaml)
        with self._tx() as c:
            row = c.execute("SELECT id FROM designs WHERE spec_hash = ?", (digest,)).fetchone()
            if row:
                return int(row[0])
            cur = c.execute("INSERT INTO designs (name, spec_yaml, spec_hash, created_at) VALUES (?, ?, ?, ?)",
                            (name, spec_yaml, digest, time.time()))
            return _rowid(cur)

    def get_design(self, design_id: int) -> DesignRow:
        rows = self._query("SELECT * FROM designs WHERE id = ?", (int(design_id),))
        if not rows:
            raise ValueError(f"no design {design_id} in {self.path}; `explorer runs` lists what is stored")
        return DesignRow(**dict(rows[0]))

    def list_designs(self, limit: int = 500) -> list[DesignRow]:
        return [DesignRow(**dict(r)) for r in self._query("SELECT * FROM designs ORDER BY id DESC LIMIT ?", (limit,))]

    def keep_design(self, spec: Any, origin: str = "", name: str | None = None) -> int:
        """Store a design the explorer showed (deduplicated by hash) and mark it used now; its id.

        ``origin`` (``preset``, ``link``, ``edit`` ...) is kept from the first time only; a name the
        user gave it is never overwritten.
        """
        design_id = self.save_design(spec, name)
        with self._tx() as c:
            c.execute("UPDATE designs SET last_used_at = ?, origin = coalesce(origin, ?) WHERE id = ?",
                      (time.time(), origin[:40] or None, design_id))
        return design_id

    def rename_design(self, design_id: int, name: str) -> DesignRow:
        """Give a stored design the name the user chose (1 to 80 printable characters); the row after."""
        clean = " ".join(str(name or "").split())
        if not clean or len(clean) > MAX_DESIGN_NAME or not clean.isprintable():
            raise ValueError(f"a design's name is 1 to {MAX_DESIGN_NAME} printable characters; "
                             f"got {len(clean)}")
        self.get_design(design_id)  # no such design: ValueError naming it
        with self._tx() as c:
            c.execute("UPDATE designs SET name = ? WHERE id = ?", (clean, int(design_id)))
        return self.get_design(design_id)

    def recent_designs(self, limit: int = 200) -> list[DesignRow]:
        """The designs the explorer kept, most recently used first ('My designs')."""
        sql = "SELECT * FROM designs ORDER BY coalesce(last_used_at, created_at) DESC, id DESC LIMIT ?"
        return [DesignRow(**dict(r)) for r in self._query(sql, (int(limit),))]

    # ------------------------------------------------------------------ measurements

    def save_analysis(self, design_id: int, analysis: Any) -> int:
        """Store an ``explorer.analysis.Analysis`` (or its ``summary()`` dict) of a design."""
        data = analysis.summary() if hasattr(analysis, "summary") else dict(analysis)
        shape = data.get("input_shape") or [0, 0, 0, 0]
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO analyses (design_id, input_size, params, macs, peak_activation_bytes, json, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (int(design_id), int(shape[-1]), int(data["params"]), int(data["macs"]),
                 int(data.get("peak_activation_bytes", 0)), json.dumps(data, default=str), time.time()),
            )
            return _rowid(cur)

    def list_analyses(self, design_id: int | None = None) -> list[dict[str, Any]]:
        where = " WHERE design_id = ?" if design_id is not None else ""
        sql = f"SELECT * FROM analyses{where} ORDER BY id"  # noqa: S608 - constant clauses, values bound
        return [dict(r) for r in self._query(sql, () if design_id is None else (int(design_id),))]

    def save_latency(self, design_id: int, backend: str, device: str, median_ms: float, *, threads: int | None = None,
                     runs: int | None = None, p90_ms: float | None = None, cv: float | None = None,
                     extra: Mapping[str, Any] | None = None) -> int:
        """Store one latency measurement of a design (milliseconds; ``cv`` = std / mean of the runs)."""
        if not (isinstance(median_ms, (int, float)) and math.isfinite(median_ms) and median_ms >= 0):
            raise ValueError(f"median_ms {median_ms!r} must be a finite, non-negative number of milliseconds")
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO latency (design_id, backend, device, threads, runs, median_ms, p90_ms, cv, json, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (int(design_id), backend, device, threads, runs, float(median_ms), _finite(p90_ms), _finite(cv),
                 json.dumps(dict(extra or {}), default=str), time.time()),
            )
            return _rowid(cur)

    def list_latency(self, design_id: int | None = None) -> list[dict[str, Any]]:
        where = " WHERE design_id = ?" if design_id is not None else ""
        sql = f"SELECT * FROM latency{where} ORDER BY id"  # noqa: S608 - constant clauses, values bound
        return [dict(r) for r in self._query(sql, () if design_id is None else (int(design_id),))]

    def save_proxies(
        self, design_id: int, input_size: int, dataset: str, seed: int, scores: Mapping[str, Any]
    ) -> int:
        """Store the zero-cost proxy scores of a design."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO proxies (design_id, input_size, dataset, seed, json, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (int(design_id), int(input_size), dataset, int(seed), json.dumps(dict(scores), default=str),
                 time.time()),
            )
            return _rowid(cur)

    def list_proxies(self, design_id: int | None = None) -> list[dict[str, Any]]:
        where = " WHERE design_id = ?" if design_id is not None else ""
        sql = f"SELECT * FROM proxies{where} ORDER BY id"  # noqa: S608 - constant clauses, values bound
        rows = [dict(r) for r in self._query(sql, () if design_id is None else (int(design_id),))]
        for r in rows:
            r["scores"] = json.loads(r.pop("json"))
        return rows

    # ------------------------------------------------------------------ runs

    def start_run(self, design_id: int, dataset: str, config: Mapping[str, Any]) -> int:
        """A new run, status ``running``, owned by this process; returns its id."""
        pid = os.getpid()
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO runs (design_id, dataset, config_json, status, started_at, pid, proc_start, host) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?)",
                (int(design_id), dataset, json.dumps(dict(config), default=str), time.time(), pid, _proc_start(pid),
                 socket.gethostname()),
            )
            return _rowid(cur)

    def log_steps(self, run_id: int, rows: Iterable[StepRow | Mapping[str, Any]]) -> None:
        """Append curve points in one transaction; a point at an existing step fills in its empty fields."""
        points = [r if isinstance(r, StepRow) else StepRow(**dict(r)) for r in rows]
        if not points:
            return
        with self._tx() as c:
            c.executemany(
                "INSERT INTO run_steps (run_id, step, train_loss, val_accuracy, lr, seconds) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, step) DO UPDATE SET "
                "train_loss = coalesce(excluded.train_loss, train_loss), "
                "val_accuracy = coalesce(excluded.val_accuracy, val_accuracy), "
                "lr = coalesce(excluded.lr, lr), seconds = max(excluded.seconds, seconds)",
                [(int(run_id), int(p.step), _finite(p.train_loss), _finite(p.val_accuracy), _finite(p.lr),
                  float(p.seconds)) for p in points],
            )

    def finish_run(self, run_id: int, status: str, metrics: Mapping[str, Any] | None = None,
                   weights_path: str | Path | None = None, error: str | None = None) -> None:
        """Close a run: its final status, metrics and where its weights lie."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"status {status!r}: use one of {', '.join(s for s in RUN_STATUSES if s != 'running')}")
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET status = ?, finished_at = ?, metrics_json = ?, weights_path = ?, error = ? "
                "WHERE id = ?",
                (status, time.time(), json.dumps(dict(metrics or {}), default=str),
                 str(weights_path) if weights_path else None, error, int(run_id)),
            )

    def _run_from(self, r: sqlite3.Row) -> RunRow:
        return RunRow(
            id=r["id"], design_id=r["design_id"], design_name=r["design_name"], dataset=r["dataset"],
            status=r["status"], started_at=r["started_at"], finished_at=r["finished_at"],
            config=json.loads(r["config_json"] or "{}"), metrics=json.loads(r["metrics_json"] or "{}"),
            weights_path=r["weights_path"], error=r["error"],
        )

    _RUNS_SQL = "SELECT runs.*, designs.name AS design_name FROM runs JOIN designs ON designs.id = runs.design_id"

    def list_runs(self, limit: int = 200, status: str | None = None) -> list[RunRow]:
        """The newest runs first (without their curves)."""
        where = " WHERE runs.status = ?" if status else ""
        args: tuple[Any, ...] = ((status,) if status else ()) + (int(limit),)
        return [self._run_from(r) for r in self._query(self._RUNS_SQL + where + " ORDER BY runs.id DESC LIMIT ?", args)]

    def get_run(self, run_id: int) -> RunRow:
        """One run with its whole curve (points in step order)."""
        rows = self._query(self._RUNS_SQL + " WHERE runs.id = ?", (int(run_id),))
        if not rows:
            raise ValueError(f"no run {run_id} in {self.path}; `explorer runs` lists what is stored")
        run = self._run_from(rows[0])
        run.curve = self.get_curve(run.id)
        return run

    def get_curve(self, run_id: int) -> list[StepRow]:
        rows = self._query("SELECT step, train_loss, val_accuracy, lr, seconds FROM run_steps WHERE run_id = ? "
                           "ORDER BY step", (int(run_id),))
        return [StepRow(**dict(r)) for r in rows]

    def mark_interrupted(self) -> list[int]:
        """Runs left ``running`` by a process of this host that no longer exists -> ``interrupted``; their ids."""
        host = socket.gethostname()
        rows = self._query("SELECT id, pid, proc_start, host, started_at FROM runs WHERE status = 'running'")
        marked = []
        for r in rows:
            if r["host"] not in (None, host) or _alive(r["pid"], r["proc_start"]):
                continue
            curve = self.get_curve(r["id"])
            losses = [p for p in curve if p.train_loss is not None]
            accs = [p for p in curve if p.val_accuracy is not None]
            metrics = {
                "steps": curve[-1].step if curve else 0,
                "seconds": curve[-1].seconds if curve else 0.0,
                "final_train_loss": losses[-1].train_loss if losses else None,
                "val_accuracy": accs[-1].val_accuracy if accs else None,
            }
            with self._tx() as c:
                c.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ?, metrics_json = ?, error = ? "
                    "WHERE id = ? AND status = 'running'",
                    (r["started_at"] + metrics["seconds"], json.dumps(metrics),
                     "the training process ended without closing the run (killed or crashed)", r["id"]),
                )
            marked.append(int(r["id"]))
        return marked


def _rowid(cur: sqlite3.Cursor) -> int:
    """The id of the row an INSERT just wrote (never None after one)."""
    if cur.lastrowid is None:
        raise StoreError("SQLite reported no id for the row just written")
    return int(cur.lastrowid)


class _Transaction:
    """``with store._tx() as conn:`` one IMMEDIATE transaction under the store's lock; commit or roll back."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        store = self.store
        if store._damaged:
            raise StoreError(f"{store.path} was found damaged; nothing more is written to it: {_MOVE_ASIDE}")
        store._lock.acquire()
        try:
            store._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            store._lock.release()
            raise store._failure(exc) from None
        except BaseException:
            store._lock.release()
            raise
        return store._conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        store = self.store
        try:
            try:
                store._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
            except sqlite3.DatabaseError as failed:
                if exc_type is None:  # the COMMIT failed: end the transaction, report why
                    with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled it back already
                        store._conn.execute("ROLLBACK")
                    raise store._failure(failed) from None
                # the ROLLBACK failed too: the body's error below is the one to report
        finally:
            store._lock.release()
        if isinstance(exc, sqlite3.DatabaseError):
            translated = store._failure(exc)
            if translated is not exc:
                raise translated from None
def iter_rows(store: Store, table: str) -> Iterator[dict[str, Any]]:
    """Every row of one of the store's tables (for checks and exports)."""
    if table not in ("designs", "analyses", "latency", "proxies", "runs", "run_steps", "searches", "candidates"):
        raise ValueError(f"unknown table {table!r}")
    for r in store._query(f"SELECT * FROM {table}"):  # noqa: S608 - table checked against the list above
        yield dict(r)
