"""The UI's edit queue: bounded analyses in worker processes, one edit at a time per session.

``explorer.ui.worker``: an analysis past the bound is refused with our one-line message, its
worker replaced, while another analysis completes meanwhile. ``explorer.ui.sessions``: two
edits of one session never run at once and the second starts from the first's result; a third
waiting edit is refused at once; other sessions are not held up. The last test drives the real
server with two ``gradio_client`` sessions: one session's slow edit is cut at the bound while
the other's edit completes meanwhile.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from slow_analysis import HUNGRY_NAME, SLOW_NAME, hungry_analyze, sleepy_analyze

from blocks import get_block
from explorer.analysis import analyze
from explorer.design import load_design
from explorer.spec import ArchitectureSpec, SpecError, dump_spec, validate_spec
from explorer.ui import worker
from explorer.ui.sessions import BUSY_MESSAGE, SessionGate

from tiny_designs import tiny_design

BOUND_S = 2.0


def _spec(name: str) -> ArchitectureSpec:
    return load_design(tiny_design(name))


def test_messages_are_one_line_and_name_the_fix() -> None:
    for text in (worker.timeout_message(20), worker.memory_message(6 << 30)):
        assert "\n" not in text and "make it smaller" in text
    assert "longer than 20 s to analyse" in worker.timeout_message(20)
    assert "6 GiB" in worker.memory_message(6 << 30)


def test_without_a_pool_the_count_is_here_and_remembered() -> None:
    worker.stop()
    spec = _spec("here")
    seen: list[float] = []
    first = worker.analyze_bounded(spec, lambda f, _d: seen.append(f))
    assert first == analyze(spec) and seen[-1] == 1.0
    assert worker.analyze_bounded(spec) is first  # remembered by design: not counted again


def test_pool_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 1 process"):
        worker.AnalysisPool(processes=0)
    with pytest.raises(ValueError, match="positive seconds"):
        worker.AnalysisPool(timeout_s=0)


@pytest.mark.slow
def test_a_slow_analysis_is_cut_at_the_bound_while_another_completes() -> None:
    pool = worker.AnalysisPool(processes=2, timeout_s=BOUND_S, target=sleepy_analyze)
    try:
        quick = _spec("quick")
        assert pool.analyze(quick) == analyze(quick)  # both workers started (this one is now warm)
        pool.analyze(_spec("quick2"))
        outcome: dict[str, Any] = {}

        def slow() -> None:
            progress: list[str] = []
            t0 = time.monotonic()
            try:
                pool.analyze(_spec(SLOW_NAME), lambda _f, d: progress.append(d))
            except SpecError as exc:
                outcome["slow"] = (exc.errors, time.monotonic() - t0, progress)

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.3)  # the slow one holds a worker now
        t0 = time.monotonic()
        other = _spec("other")
        assert pool.analyze(other) == analyze(other)  # the other worker answers meanwhile
        quick_s = time.monotonic() - t0
        thread.join(timeout=60)
        errors, slow_s, progress = outcome["slow"]
        assert errors == [worker.timeout_message(BOUND_S)]
        assert BOUND_S <= slow_s < BOUND_S + 5 and quick_s < BOUND_S
        assert progress == ["counting stem, block 1"]  # the worker's progress reached the caller
        assert pool.replaced == 1
        again = _spec("again")  # the pool goes on with a fresh worker in place of the killed one
        assert pool.analyze(again) == analyze(again)
    finally:
        pool.close()


@pytest.mark.slow
def test_a_worker_out_of_memory_is_refused_with_our_message() -> None:
    pool = worker.AnalysisPool(processes=1, timeout_s=60, memory_bytes=3 << 30, target=hungry_analyze)
    try:
        data = tiny_design(HUNGRY_NAME)
        data["input"]["size"] = 1024
        data["stem"][0]["out"] = 1024  # its output alone, 1024·1024² floats, is 4 GiB: past 3 GiB
        spec = validate_spec(data, get_block)  # not size-checked on purpose: the worker is the second line
        with pytest.raises(SpecError) as caught:
            pool.analyze(spec)
        assert caught.value.errors == [worker.memory_message(3 << 30)]
        small = _spec("small")
        assert pool.analyze(small) == analyze(small)  # the worker lives on (or was replaced)
    finally:
        pool.close()


# ----------------------------------------------------------------------------- the session gate


def _fake_edit(log: list[str], delay: float = 0.2):  # noqa: ANN202 - a test double
    def edit(label: str, spec_yaml: str, history: Any, draft: str) -> dict[str, Any]:
        log.append(f"start {label} on {spec_yaml}")
        time.sleep(delay)
        log.append(f"end {label}")
        return {"spec_yaml": f"{spec_yaml}+{label}", "history": history, "draft": draft, "status": label}

    return edit


def test_one_sessions_edits_run_in_turn_each_from_the_last() -> None:
    gate = SessionGate()
    log: list[str] = []
    edit = _fake_edit(log)
    slots = {"spec_yaml": 1, "history": 2, "draft": 3}
    results: dict[str, dict] = {}

    def run(label: str) -> None:  # both read the same state, as Gradio reads it before either ran
        results[label] = gate.run("s1", edit, [label, "v0", None, ""], slots)

    first = threading.Thread(target=run, args=("a",))
    first.start()
    time.sleep(0.05)
    second = threading.Thread(target=run, args=("b",))
    second.start()
    first.join()
    second.join()
    assert log == ["start a on v0", "end a", "start b on v0+a", "end b"]  # in turn; b builds on a
    assert results["b"]["spec_yaml"] == "v0+a+b"


def test_a_third_waiting_edit_is_refused_and_other_sessions_go_on() -> None:
    gate = SessionGate(max_in_flight=2)
    log: list[str] = []
    edit = _fake_edit(log, delay=0.5)
    slots = {"spec_yaml": 1}
    threads = [threading.Thread(target=gate.run, args=("s1", edit, [x, "v", None, ""], slots)) for x in "ab"]
    for t in threads:
        t.start()
    time.sleep(0.1)
    refused = gate.run("s1", edit, ["c", "v", None, ""], slots)
    assert refused["edit_error"] and BUSY_MESSAGE in refused["edit_error"]
    t0 = time.monotonic()
    other = gate.run("s2", _fake_edit([], delay=0.0), ["x", "w", None, ""], slots)
    assert other["spec_yaml"] == "w+x" and time.monotonic() - t0 < 0.3  # not behind s1's edits
    for t in threads:
        t.join()
    gate.forget("s1")
    fresh = gate.run("s1", _fake_edit([], delay=0.0), ["d", "v9", None, ""], slots)
    assert fresh["spec_yaml"] == "v9+d"  # a forgotten session starts from what Gradio passes


# ----------------------------------------------------------------------------- through the real server


@pytest.mark.slow
def test_through_the_server_a_slow_edit_is_cut_while_another_session_edits() -> None:
    from gradio_client import Client

    from explorer.ui import app
    from explorer.ui.browser_tools import free_port

    pool = worker.start(processes=2, timeout_s=BOUND_S, target=sleepy_analyze)
    demo = None
    try:
        # as ``app.launch`` does: the presets' counts come from the disk cache, not from the bounded workers
        # (the page's first design, and the "before" numbers of the first edit, are AttendNeXt's)
        app.warm_start()
        demo = app.build_app()
        pool.wait_ready()  # started and warm: what is timed below is edits, not torch's start-up
        demo.queue(default_concurrency_limit=2)
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    ssr_mode=False, show_error=True)
        url = f"http://127.0.0.1:{port}/"
        slow_client = Client(url, verbose=False, download_files=False)
        quick_client = Client(url, verbose=False, download_files=False)
        slow_yaml, quick_yaml = dump_spec(_spec(SLOW_NAME)), dump_spec(_spec("quick"))
        t0 = time.monotonic()
        slow_job = slow_client.submit(slow_yaml, "1:1", api_name="/on_editor_change")
        time.sleep(0.5)  # the slow edit is in a worker now
        quick_reply = quick_client.predict(quick_yaml, "1:1", api_name="/on_editor_change")
        quick_s = time.monotonic() - t0
        slow_reply = slow_job.result(timeout=60)
        slow_s = time.monotonic() - t0
        quick_text, slow_text = " ".join(map(str, quick_reply)), " ".join(map(str, slow_reply))
        assert "✓" in quick_text and "Applied the YAML" in quick_text and quick_s < BOUND_S
        assert worker.timeout_message(BOUND_S).split(";")[0] in slow_text and slow_s >= BOUND_S
        assert "Traceback" not in slow_text
        # two edits of one session sent at once: run in turn, the second on top of the first
        jobs = [quick_client.submit("1:1", api_name=f"/on_mutate_{name}") for name in ("deeper", "wider")]
        designs = [load_design(Path(_file_path(job.result(timeout=60)[0])).read_text()) for job in jobs]
        blocks = [len(d.stages[0].blocks) for d in designs]  # the quick design's stage has 2 blocks,
        widths = [d.stages[0].blocks[-1].params["out"] for d in designs]  # the last one 32 wide
        assert (3, 40) in set(zip(blocks, widths, strict=True))  # one design holds both edits, deeper and wider
    finally:
        if demo is not None:
            demo.close()
        worker.stop()


def _file_path(value: Any) -> str:
    """The server-side path of a file output as ``gradio_client`` returns it without downloading."""
    return str(value["path"] if isinstance(value, dict) else value)


# ----------------------------------------------------------------------------- the callbacks' side


def test_a_refused_count_leaves_the_design_and_names_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from explorer.history import History
    from explorer.ui import callbacks as cb
    from explorer.ui import render

    spec_yaml = dump_spec(_spec("current"))
    history = History.start(spec_yaml, "start")
    wider_yaml = dump_spec(_spec("wider"))
    moved = {"spec_yaml": wider_yaml, "history": history.push(wider_yaml, "wider")}  # one step to undo

    def refuse(_spec: ArchitectureSpec, _progress: object = None) -> None:
        raise SpecError(worker.timeout_message(BOUND_S))

    monkeypatch.setattr(render, "analyze_bounded", refuse)
    message = worker.timeout_message(BOUND_S)
    out = cb.on_mutate("deeper", spec_yaml, history, "1:1")
    assert message in out["edit_error"] and "spec_yaml" not in out and "history" not in out
    typed = dump_spec(_spec("typed"))
    out = cb.on_editor_change(typed, spec_yaml, history, "1:1")
    assert message in out["yaml_error"] and out["draft"] == typed and "spec_yaml" not in out  # kept as the draft
    out = cb.on_undo(moved["spec_yaml"], moved["history"], "1:1")
    assert message in out["edit_error"] and "history" not in out
