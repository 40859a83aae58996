"""Look before writing: an existing store file is checked read-only, and refused in one line if unusable.

An existing file is opened with ``mode=ro`` (and ``immutable=1`` when no ``-wal``/``-journal`` lies
beside it, so not even those are created); its ``PRAGMA user_version`` is compared with
:data:`~explorer.store_schema.SCHEMA_VERSION`, ``PRAGMA quick_check`` must say ``ok``, and every table
and column its stated version promises (:func:`~explorer.store_schema.expected_schema`) must be there.
A file that fails is refused with :class:`StoreError`, one line naming the file, what is wrong and what
to do, and is left byte for byte as it was. Only then does :class:`~explorer.store.Store` open it for
writing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .store_schema import SCHEMA_VERSION, expected_schema, schema_of

__all__ = ["MOVE_ASIDE", "StoreError", "check_file", "inspect_read_only", "too_new", "unusable"]


class StoreError(ValueError):
    """A store file that cannot be used (damaged, foreign, newer, unreachable): one line, file and fix."""


#: what to do with a file that is not a usable store
MOVE_ASIDE = "move it aside (a new store will be created in its place) or give another --db"


def too_new(path: Path, version: int) -> StoreError:
    """The refusal of a file whose schema ``version`` is newer than this explorer's."""
    return StoreError(
        f"{path} has schema version {version}, made by a newer explorer; this one reads up to "
        f"{SCHEMA_VERSION}: upgrade the explorer or use another --db"
    )


def check_file(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse (``StoreError``) a newer, damaged or incomplete file; reads only, writes nothing."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise too_new(path, version)
    if version < 0:
        raise StoreError(f"{path} is not a usable explorer database: schema version {version}; {MOVE_ASIDE}")
    rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(4)")]
    if rows != ["ok"]:
        lines = [line.strip() for r in rows for line in r.splitlines()]
        problems = [line for line in lines if line and not line.startswith("*** in database")] or lines
        detail = "; ".join(problems[:2])[:300]
        raise StoreError(f"{path} is not a usable explorer database: it is damaged ({detail}); {MOVE_ASIDE}")
    found = schema_of(conn)
    missing = [t for t in expected_schema(version) if t not in found]
    if missing:
        raise StoreError(f"{path} is not a usable explorer database: it says schema version {version} but has no "
                         f"table {', '.join(missing)}; {MOVE_ASIDE}")
    for table, columns in expected_schema(version).items():
        lacking = sorted(columns - found[table])
        if lacking:
            raise StoreError(f"{path} is not a usable explorer database: it says schema version {version} but table "
                             f"{table} has no column {', '.join(lacking)}; {MOVE_ASIDE}")


def unusable(path: Path, exc: sqlite3.Error) -> StoreError:
    """An SQLite failure while opening -> one line: what is wrong with the file and what to do."""
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError(f"{path} is busy ({exc}): another process holds it locked; try again when that one is done")
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_FULL")):
        return StoreError(f"{path} cannot be opened for writing ({exc}); check its permissions, its folder and the "
                          "disk, or give another --db")
    damaged = ": it is damaged" if name.startswith("SQLITE_CORRUPT") else ""
    return StoreError(f"{path} is not a usable explorer database{damaged} ({exc}); {MOVE_ASIDE}")


def inspect_read_only(path: Path) -> bool:
    """Look at an existing file without writing a byte (see the module docstring); ``StoreError`` if unusable.

    Returns False when the file could not be checked read-only because a hot rollback journal lies beside
    it (SQLite must write to roll it back): the caller checks it on its read-write connection instead.
    """
    sidecar = any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-journal"))
    # immutable: no locks, no -shm/-wal; right only when the main file is the whole database (no sidecar)
    uri = path.resolve().as_uri() + ("?mode=ro" if sidecar else "?mode=ro&immutable=1")
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=10.0)
    except sqlite3.Error as exc:
        raise StoreError(f"{path} cannot be opened ({exc}); check its permissions or give another --db") from None
    try:
        check_file(conn, path)
        return True
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_READONLY_ROLLBACK":
            return False
        raise unusable(path, exc) from None
    finally:
        conn.close()
