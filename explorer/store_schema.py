"""The store's schema: the ordered migrations, applied by ``PRAGMA user_version``.

:data:`MIGRATIONS` is an ordered list; migration ``i`` (1-based) brings a file from ``user_version`` ``i - 1``
to ``i``, and :data:`SCHEMA_VERSION` is the version the last one leaves. :func:`apply_migration` runs one,
with its version bump, in a single transaction, so a file is always at exactly one version. A new table or
column is a new migration appended at the end; a shipped migration is never edited.
:func:`expected_schema` says which tables and columns a file at a given version must have (the open check
in :mod:`explorer.store_check` compares a file against it).
"""

from __future__ import annotations

import sqlite3

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "apply_migration", "expected_schema", "schema_of"]

#: (description, statements): migration i brings the file from user_version i to i + 1
MIGRATIONS: list[tuple[str, tuple[str, ...]]] = [
    (
        "designs, training runs and their curves",
        (
            """CREATE TABLE designs (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                spec_yaml TEXT NOT NULL,
                spec_hash TEXT NOT NULL UNIQUE,
                created_at REAL NOT NULL)""",
            """CREATE TABLE runs (
                id INTEGER PRIMARY KEY,
                design_id INTEGER NOT NULL REFERENCES designs(id),
                dataset TEXT NOT NULL,
                config_json TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'cancelled', 'interrupted', 'failed')),
                started_at REAL NOT NULL,
                finished_at REAL,
                metrics_json TEXT,
                weights_path TEXT)""",
            """CREATE TABLE run_steps (
                run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                step INTEGER NOT NULL,
                train_loss REAL,
                val_accuracy REAL,
                lr REAL,
                seconds REAL NOT NULL,
                PRIMARY KEY (run_id, step))""",
        ),
    ),
    (
        "analyses, latency and proxies; which process owns a run, and why one failed",
        (
            """CREATE TABLE analyses (
                id INTEGER PRIMARY KEY,
                design_id INTEGER NOT NULL REFERENCES designs(id),
                input_size INTEGER NOT NULL,
                params INTEGER NOT NULL,
                macs INTEGER NOT NULL,
                peak_activation_bytes INTEGER NOT NULL,
                json TEXT NOT NULL,
                created_at REAL NOT NULL)""",
            """CREATE TABLE latency (
                id INTEGER PRIMARY KEY,
                design_id INTEGER NOT NULL REFERENCES designs(id),
                backend TEXT NOT NULL,
                device TEXT NOT NULL,
                threads INTEGER,
                runs INTEGER,
                median_ms REAL NOT NULL,
                p90_ms REAL,
                cv REAL,
                json TEXT NOT NULL,
                created_at REAL NOT NULL)""",
            """CREATE TABLE proxies (
                id INTEGER PRIMARY KEY,
                design_id INTEGER NOT NULL REFERENCES designs(id),
                input_size INTEGER NOT NULL,
                dataset TEXT NOT NULL,
                seed INTEGER NOT NULL,
                json TEXT NOT NULL,
                created_at REAL NOT NULL)""",
            "ALTER TABLE runs ADD COLUMN pid INTEGER",
            "ALTER TABLE runs ADD COLUMN proc_start TEXT",
            "ALTER TABLE runs ADD COLUMN host TEXT",
            "ALTER TABLE runs ADD COLUMN error TEXT",
            "CREATE INDEX runs_by_status ON runs(status)",
            "CREATE INDEX analyses_by_design ON analyses(design_id, input_size)",
            "CREATE INDEX latency_by_design ON latency(design_id)",
        ),
    ),
    (
        "design searches and every evaluation of their candidates",
        (
            """CREATE TABLE searches (
                id INTEGER PRIMARY KEY,
                base_design_id INTEGER NOT NULL REFERENCES designs(id),
                objectives TEXT NOT NULL,
                config_json TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'stopped', 'interrupted', 'failed')),
                started_at REAL NOT NULL,
                finished_at REAL,
                elapsed_s REAL NOT NULL DEFAULT 0,
                pid INTEGER,
                proc_start TEXT,
                host TEXT,
                error TEXT)""",
            """CREATE TABLE candidates (
                id INTEGER PRIMARY KEY,
                search_id INTEGER NOT NULL REFERENCES searches(id) ON DELETE CASCADE,
                seq INTEGER NOT NULL,
                candidate INTEGER NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('start', 'child', 'promotion')),
                design_id INTEGER NOT NULL REFERENCES designs(id),
                design_key TEXT NOT NULL,
                fidelity_steps INTEGER NOT NULL,
                params INTEGER NOT NULL,
                macs INTEGER NOT NULL,
                peak_activation_bytes INTEGER NOT NULL,
                latency_ms REAL,
                accuracy REAL,
                feasible INTEGER NOT NULL,
                reasons_json TEXT NOT NULL,
                seed INTEGER NOT NULL,
                seconds REAL NOT NULL,
                worker TEXT NOT NULL,
                json TEXT NOT NULL,
                created_at REAL NOT NULL,
                UNIQUE (search_id, seq))""",
            "CREATE INDEX searches_by_status ON searches(status)",
            "CREATE INDEX candidates_by_design ON candidates(design_id)",
        ),
    ),
    (
        "the explorer's own designs: when each was last opened and where it came from ('My designs')",
        (
            "ALTER TABLE designs ADD COLUMN last_used_at REAL",
            "ALTER TABLE designs ADD COLUMN origin TEXT",
            "CREATE INDEX designs_by_last_used ON designs(last_used_at)",
        ),
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


def apply_migration(conn: sqlite3.Connection, target: int) -> None:
    """Apply migration number ``target`` (1-based) and set ``user_version = target``, all in one transaction.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    _description, statements = MIGRATIONS[target - 1]
    conn.execute("BEGIN IMMEDIATE")
    try:
        if int(conn.execute("PRAGMA user_version").fetchone()[0]) >= target:  # another process got there first
            conn.execute("COMMIT")
            return
        for sql in statements:
            conn.execute(sql)
        conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def expected_schema(version: int) -> dict[str, set[str]]:
    """{table: columns} that migrations 1 … ``version`` create (built once in memory, then cached)."""
    if version not in _SCHEMAS:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        try:
            for target in range(1, version + 1):
                apply_migration(conn, target)
            _SCHEMAS[version] = schema_of(conn)
        finally:
            conn.close()
    return _SCHEMAS[version]


_SCHEMAS: dict[int, dict[str, set[str]]] = {}


def schema_of(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """{table: columns} of the database behind ``conn``, as it is now."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: {r[1] for r in conn.execute(f"PRAGMA table_info({_quote(t)})")} for t in tables}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
