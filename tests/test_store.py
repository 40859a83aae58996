"""The SQLite store: WAL, migrations from an older schema, round trips, and nothing lost to SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from explorer.store import SCHEMA_VERSION, Store, StoreError, apply_migration, spec_hash

from tiny_designs import tiny_design

ROOT = Path(__file__).resolve().parents[1]

TINY = tiny_design(width=8, stem_stride=2)
TINY_YAML = yaml.safe_dump(TINY, sort_keys=False)


def test_fresh_store_is_wal_current_and_checks_foreign_keys(tmp_path: Path) -> None:
    with Store(tmp_path / "a" / "x.sqlite") as s:
        assert s.journal_mode() == "wal"
        assert s.schema_version == SCHEMA_VERSION >= 2
        assert s.integrity_check() == "ok"
        with pytest.raises(sqlite3.IntegrityError):
            s.start_run(999, "digits", {})  # no such design
    with sqlite3.connect(tmp_path / "a" / "x.sqlite") as c:
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"designs", "analyses", "latency", "proxies", "runs", "run_steps"} <= tables


def test_migrates_an_older_file_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migration(conn, 1)  # a file written by the first schema
    conn.execute("INSERT INTO designs (name, spec_yaml, spec_hash, created_at) VALUES ('tiny', ?, ?, 1.0)",
                 (TINY_YAML, spec_hash(TINY_YAML)))
    conn.execute("INSERT INTO runs (design_id, dataset, config_json, status, started_at, finished_at, metrics_json) "
                 "VALUES (1, 'digits', '{\"steps\": 5}', 'finished', 2.0, 3.0, '{\"val_accuracy\": 0.5}')")
    conn.execute("INSERT INTO run_steps VALUES (1, 5, 1.5, 0.5, 0.001, 0.7)")
    conn.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        run = s.get_run(1)
        assert run.status == "finished" and run.metrics == {"val_accuracy": 0.5} and run.config == {"steps": 5}
        assert [(p.step, p.train_loss, p.val_accuracy) for p in run.curve] == [(5, 1.5, 0.5)]
        assert s.save_design(TINY_YAML) == 1  # the same design: deduplicated against the old row
        s.save_latency(1, "onnxruntime", "host", 2.5, threads=1, runs=30, p90_ms=2.7, cv=0.03)
        assert s.list_latency(1)[0]["median_ms"] == 2.5
        assert s.integrity_check() == "ok"


def test_a_newer_or_foreign_file_is_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite"
    sqlite3.connect(newer).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ValueError, match="newer explorer"):
        Store(newer)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(ValueError, match="not a usable explorer database"):
        Store(junk)
    with pytest.raises(ValueError, match="directory"):
        Store(tmp_path)


def test_default_path_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPLORER_DB", str(tmp_path / "env.sqlite"))
    with Store() as s:
        assert s.path == tmp_path / "env.sqlite" and s.path.exists()


def test_round_trips(tmp_path: Path) -> None:
    from explorer.analysis import analyze
    from explorer.design import load_design

    with Store(tmp_path / "r.sqlite") as s:
        d1 = s.save_design(TINY_YAML)
        # the same design written another way is the same row; another design is a new one
        assert s.save_design(yaml.safe_dump(TINY, sort_keys=True, default_flow_style=True)) == d1
        d2 = s.save_design(yaml.safe_dump({**TINY, "num_classes": 5}), name="five")
        assert d2 != d1 and [d.id for d in s.list_designs()] == [d2, d1]
        assert s.get_design(d1).spec_yaml == TINY_YAML and s.get_design(d2).name == "five"
        with pytest.raises(ValueError, match="no design 42"):
            s.get_design(42)
        with pytest.raises(ValueError, match="must be a mapping"):
            s.save_design("- just\n- a list\n")

        a = analyze(load_design(TINY))
        s.save_analysis(d1, a)
        row = s.list_analyses(d1)[0]
        assert (row["input_size"], row["params"], row["macs"]) == (16, a.params, a.macs)

        s.save_proxies(d1, 16, "digits", 0, {"synflow": 1e30, "naswot": 12.5})
        assert s.list_proxies(d1)[0]["scores"] == {"synflow": 1e30, "naswot": 12.5}
        with pytest.raises(ValueError, match="median_ms"):
            s.save_latency(d1, "onnxruntime", "host", float("nan"))

        run = s.start_run(d1, "digits", {"steps": 20, "input_size": 16})
        s.log_steps(run, [{"step": 10, "train_loss": 2.0, "lr": 0.002, "seconds": 1.0}])
        s.log_steps(run, [{"step": 20, "train_loss": 1.5, "lr": 0.0, "seconds": 2.0}])
        s.log_steps(run, [{"step": 10, "val_accuracy": 0.4, "seconds": 1.2}])  # fills in step 10's accuracy
        assert s.get_run(run).status == "running" and s.list_runs(status="running")[0].id == run
        s.finish_run(run, "finished", {"val_accuracy": 0.6, "steps": 20}, tmp_path / "w.pt")
        got = s.get_run(run)
        assert got.status == "finished" and got.finished_at >= got.started_at and got.weights_path.endswith("w.pt")
        assert [(p.step, p.train_loss, p.val_accuracy) for p in got.curve] == [(10, 2.0, 0.4), (20, 1.5, None)]
        assert got.design_name == "tiny" and got.config["input_size"] == 16
        with pytest.raises(ValueError, match="status"):
            s.finish_run(run, "exploded")
        with pytest.raises(ValueError, match="no run 77"):
            s.get_run(77)


def test_threads_share_one_store(tmp_path: Path) -> None:
    with Store(tmp_path / "t.sqlite") as s:
        d = s.save_design(TINY_YAML)
        runs = [s.start_run(d, "digits", {}) for _ in range(4)]

        def write(run_id: int) -> None:
            for step in range(1, 51):
                s.log_steps(run_id, [{"step": step, "train_loss": 1.0 / step, "seconds": step * 0.01}])

        threads = [threading.Thread(target=write, args=(r,)) for r in runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(len(s.get_curve(r)) == 50 for r in runs)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_runs_of_dead_processes_become_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite"
    with Store(path) as s:
        d = s.save_design(TINY_YAML)
        mine = s.start_run(d, "digits", {})
        orphan = s.start_run(d, "digits", {})
        s.log_steps(orphan, [{"step": 10, "train_loss": 1.25, "val_accuracy": 0.5, "seconds": 3.0}])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE runs SET pid = ?, proc_start = NULL WHERE id = ?", (_dead_pid(), orphan))
    conn.commit()
    with Store(path) as s:
        assert s.get_run(mine).status == "running"  # this process is alive: left alone
        r = s.get_run(orphan)
        assert r.status == "interrupted" and r.metrics["steps"] == 10 and r.metrics["val_accuracy"] == 0.5
        assert r.finished_at == pytest.approx(r.started_at + 3.0) and "killed" in r.error


def test_sigkill_mid_training_loses_nothing_committed(tmp_path: Path) -> None:
    db = tmp_path / "kill.sqlite"
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_YAML)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "explorer", "train", str(spec), "--dataset", "digits", "--input", "16", "--batch", "16",
         "--steps", "1000000", "--db", str(db), "--json"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: list[tuple] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if not db.exists():
                continue
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
                    seen = c.execute("SELECT run_id, step, train_loss, val_accuracy, lr, seconds FROM run_steps "
                                     "ORDER BY run_id, step").fetchall()
            except sqlite3.OperationalError:
                continue  # the schema is being created
            if len(seen) >= 3:
                break
        assert proc.poll() is None, "the training process ended before it could be killed"
        assert len(seen) >= 3, "no curve points were committed in time"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    after = raw.execute("SELECT run_id, step, train_loss, val_accuracy, lr, seconds FROM run_steps "
                        "ORDER BY run_id, step").fetchall()
    assert set(seen) <= set(after)  # every row read before the kill is there, unchanged
    assert raw.execute("SELECT status FROM runs").fetchall() == [("running",)]
    raw.close()
    with Store(db) as s:
        run = s.list_runs()[0]
        assert run.status == "interrupted"
        assert run.metrics["steps"] == after[-1][1] and run.design_name == "tiny"
        assert s.integrity_check() == "ok"


# ----------------------------------------------------------------------------- damaged and foreign files


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sidecars(path: Path) -> list[str]:
    return [s for s in ("-wal", "-shm", "-journal") if Path(f"{path}{s}").exists()]


def _real_store(path: Path) -> bytes:
    """A closed store in WAL mode with 20 runs of 40 curve points (a few dozen 4 KiB pages)."""
    with Store(path) as s:
        d = s.save_design(TINY_YAML)
        for i in range(20):
            r = s.start_run(d, "digits", {"i": i})
            s.log_steps(r, [{"step": k, "train_loss": 1.0 / k, "seconds": 0.1 * k} for k in range(1, 41)])
            s.finish_run(r, "finished", {"steps": 40})
    assert _sidecars(path) == []  # the last connection checkpointed and removed them
    data = path.read_bytes()
    assert data[18:20] == b"\x02\x02" and len(data) >= 20 * 4096  # WAL mode in the header; many pages
    return data


def _assert_refused_untouched(path: Path, *fragments: str) -> str:
    before = _sha(path)
    with pytest.raises(StoreError) as info:
        Store(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    assert _sha(path) == before, "the refused file was modified"
    assert _sidecars(path) == [], "the refused file got -wal/-shm/-journal files"
    return message


def test_damaged_files_are_refused_in_one_line_and_left_untouched(tmp_path: Path) -> None:
    good = _real_store(tmp_path / "good.sqlite")
    page = 4096
    middle = (len(good) // page // 2) * page

    truncated = tmp_path / "truncated.sqlite"
    truncated.write_bytes(good[: middle + page // 2])  # cut in the middle of a page
    _assert_refused_untouched(truncated, "not a usable explorer database", "move it aside")

    overwritten = tmp_path / "overwritten.sqlite"
    overwritten.write_bytes(good[:middle] + bytes(range(256)) * 16 + good[middle + page:])  # one page of garbage
    assert len(overwritten.read_bytes()) == len(good)
    _assert_refused_untouched(overwritten, "damaged (", "Page ", "move it aside")

    no_tables = tmp_path / "no-tables.sqlite"
    conn = sqlite3.connect(no_tables)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.close()
    _assert_refused_untouched(no_tables, f"schema version {SCHEMA_VERSION}", "no table designs", "move it aside")

    no_column = tmp_path / "no-column.sqlite"  # every table, but runs lost a column its version promises
    conn = sqlite3.connect(no_column, isolation_level=None)
    for target in range(1, SCHEMA_VERSION + 1):
        apply_migration(conn, target)
    conn.execute("ALTER TABLE runs DROP COLUMN error")
    conn.close()
    _assert_refused_untouched(no_column, f"schema version {SCHEMA_VERSION}", "table runs has no column error")

    old_tables = tmp_path / "old-tables.sqlite"  # the tables of version 1 under the number 2
    conn = sqlite3.connect(old_tables, isolation_level=None)
    apply_migration(conn, 1)
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    _assert_refused_untouched(old_tables, "schema version 2", "no table analyses")

    foreign = tmp_path / "foreign.sqlite"
    foreign.write_bytes(b"this is not a database at all" * 100)
    _assert_refused_untouched(foreign, "not a usable explorer database", "move it aside")

    wal_header_junk = tmp_path / "junk-after-header.sqlite"  # a valid header, then noise: damaged pages
    wal_header_junk.write_bytes(good[:100] + bytes(len(good) - 100))
    _assert_refused_untouched(wal_header_junk, "not a usable explorer database")

    with Store(tmp_path / "good.sqlite") as s:  # the original still opens, and the damage was never its own
        assert s.integrity_check() == "ok" and len(s.list_runs()) == 20


def test_refusing_a_newer_file_does_not_modify_it(tmp_path: Path) -> None:
    rollback = tmp_path / "newer-rollback.sqlite"  # a newer file in rollback-journal mode (WAL would rewrite it)
    conn = sqlite3.connect(rollback)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    assert rollback.read_bytes()[18:20] == b"\x01\x01"
    _assert_refused_untouched(rollback, "newer explorer")

    wal = tmp_path / "newer-wal.sqlite"  # a newer file in WAL mode: even a read-only look would add -wal/-shm
    _real_store(wal)
    conn = sqlite3.connect(wal, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
    conn.close()
    assert _sidecars(wal) == []
    _assert_refused_untouched(wal, "newer explorer", f"schema version {SCHEMA_VERSION + 7}")


def test_damage_found_after_opening_stops_every_write(tmp_path: Path) -> None:
    path = tmp_path / "later.sqlite"
    _real_store(path)
    with Store(path, mark_interrupted=False) as s:
        root = s._query("SELECT rootpage FROM sqlite_master WHERE name = 'run_steps'")[0][0]
        with open(path, "r+b") as f:  # another program damages the file while the store is open
            f.seek((root - 1) * 4096)
            f.write(b"\xff" * 4096)
        damaged = _sha(path)
        with pytest.raises(StoreError, match="damaged") as info:
            s.get_curve(1)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
        with pytest.raises(StoreError, match="nothing more is written"):
            s.save_design(yaml.safe_dump({**TINY, "num_classes": 3}))
        with pytest.raises(StoreError, match="nothing more is written"):
            s.start_run(1, "digits", {})
    assert _sha(path) == damaged


def test_a_file_with_a_hot_rollback_journal_is_recovered_then_checked(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import explorer.store as store_module

    looks: list[bool] = []
    inspect = store_module._inspect_read_only
    monkeypatch.setattr(store_module, "_inspect_read_only", lambda p: looks.append(inspect(p)) or looks[-1])

    src = tmp_path / "src.sqlite"
    conn = sqlite3.connect(src, isolation_level=None)
    for target in range(1, SCHEMA_VERSION + 1):
        apply_migration(conn, target)
    conn.execute("PRAGMA cache_size = 1")  # spill to the file mid-transaction, leaving a hot journal
    conn.execute("INSERT INTO designs (name, spec_yaml, spec_hash, created_at) VALUES ('tiny', ?, ?, 1.0)",
                 (TINY_YAML, spec_hash(TINY_YAML)))
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO designs (name, spec_yaml, spec_hash, created_at) VALUES ('x', ?, ?, 2.0)",
                     [("y" * 2000, f"h{i}") for i in range(200)])
    crashed = tmp_path / "crashed.sqlite"
    shutil.copy(src, crashed)
    shutil.copy(f"{src}-journal", f"{crashed}-journal")  # the files as a crash at this instant leaves them
    conn.execute("ROLLBACK")
    conn.close()
    with Store(crashed) as s:  # the journal is rolled back: only the committed design is there
        assert [d.name for d in s.list_designs()] == ["tiny"] and s.integrity_check() == "ok"
    assert looks == [False]  # read-only could not roll the journal back: checked on the writing connection
    with Store(crashed) as s:
        assert s.journal_mode() == "wal"
    assert looks == [False, True]


def test_cli_reports_a_damaged_store_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from explorer.cli import main

    good = _real_store(tmp_path / "good.sqlite")
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(good[: len(good) // 2 + 1000])
    before = _sha(damaged)
    code = main(["runs", "--db", str(damaged)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and str(damaged) in err and "move it aside" in err
    assert _sha(damaged) == before and _sidecars(damaged) == []


def test_a_store_path_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match=r"cannot make the folder .*afile for the store"):
        Store(tmp_path / "afile" / "x.sqlite")
