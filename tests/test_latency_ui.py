"""The latency tab's callbacks, called without a browser: measure here, on a board (a real agent
in a subprocess), predict for a profile; every mistake is a message, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gradio as gr
import pytest

from explorer.analysis import analyze
from explorer.charts import latency_figure
from explorer.design import load_preset, retarget
from explorer.latency.client import RemoteError, health
from explorer.latency.predictor import predict
from explorer.latency.profiles import load_profile
from explorer.spec import expand_units
from explorer.ui import latency_callbacks as lc
from explorer.ui.latency_tab import build_latency_tab

AGENT = Path(__file__).resolve().parents[1] / "explorer" / "latency" / "agent.py"
TOKEN = "ui-test-token"


@pytest.fixture(scope="module")
def small_yaml() -> str:
    return retarget(load_preset("mobilenetv3_small"), input_size=64).to_yaml()


@pytest.fixture(scope="module")
def board() -> Iterator[tuple[str, int]]:
    """The standalone agent on a free 127.0.0.1 port (started as a board starts it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, str(AGENT), "--token", TOKEN, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            health(f"http://127.0.0.1:{port}", TOKEN, timeout=2)
            break
        except RemoteError:
            assert proc.poll() is None and time.monotonic() < deadline, "the agent did not start"
            time.sleep(0.2)
    try:
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_predict_for_a_profile_gives_total_table_and_chart() -> None:
    spec = retarget(load_preset("attendnext"), input_size=96)
    progress: list[float] = []
    result = lc.on_predict(spec.to_yaml(), "cortex-a72", compare=True, presets=["mobilenetv3_small"],
                           progress=lambda f, _d: progress.append(f))
    total = predict(spec, load_profile("cortex-a72"))
    assert f"{total:.2f} ms" in result["status"] and "not calibrated" in result["status"]
    assert result["result"]["predicted_ms"] == pytest.approx(total)
    # one row per unit, in execution order, whose times add up to the total (plus the fixed cost)
    assert [row[0] for row in result["table"]] == [u.name for u in expand_units(spec)]
    assert [row[2] for row in result["table"]] == [round(b.macs / 1e6, 2) for b in analyze(spec).blocks]  # one MACs
    assert sum(row[3] for row in result["table"]) == pytest.approx(total - load_profile("cortex-a72").const_ms,
                                                                  abs=1e-3 * len(result["table"]))
    stars = [t for t in result["chart"].data if t.marker.symbol == "star"]
    dots = [t for t in result["chart"].data if t.marker.symbol == "circle"]
    assert list(stars[0].text) == [spec.name] and stars[0].y[0] == pytest.approx(total)
    assert list(dots[0].text) == ["mobilenetv3_small"]
    assert dots[0].y[0] == pytest.approx(predict(load_preset("mobilenetv3_small"), load_profile("cortex-a72")))
    assert progress[0] == 0.0 and progress[-1] == 1.0


def test_measure_locally_reports_stats_and_caches_presets(small_yaml: str) -> None:
    lc._MEASURED.clear()
    result = lc.on_measure_local(small_yaml, runs=5, threads=1, compare=True, presets=["mobilenetv3_small"])
    stats = result["result"]
    assert stats["runs"] == 5 and 0 < stats["median_ms"] <= stats["p90_ms"] and stats["backend"] == "onnxruntime-cpu"
    assert "median" in result["status"] and "p90" in result["status"] and "cv" in result["status"]
    assert {t.name for t in result["chart"].data} == {"your design (measured here)", "presets (measured here)"}
    assert len(lc._MEASURED) == 1
    cached = next(iter(lc._MEASURED.values()))
    again = lc.on_measure_local(small_yaml, runs=5, threads=1, compare=True, presets=["mobilenetv3_small"])
    dots = [t for t in again["chart"].data if t.marker.symbol == "circle"]
    assert dots[0].y[0] == cached["median_ms"] and len(lc._MEASURED) == 1  # measured once per setting


def test_measure_on_a_board_through_its_agent(board: tuple[str, int], small_yaml: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    host, port = board
    monkeypatch.setenv("EXPLORER_BOARDS", f"{host}:{port}")  # the person running the server allows it
    result = lc.on_measure_board(small_yaml, host, port, TOKEN, runs=3, threads=1)
    assert result["result"]["runs"] == 3 and "measured on http://127.0.0.1:" in result["status"]
    assert {"machine", "cpu", "cores", "onnxruntime"} <= set(result["result"]["device"])
    wrong = lc.on_measure_board(small_yaml, host, port, "not-the-token", runs=3)
    assert wrong["status"].startswith("⚠") and "401" in wrong["status"] and wrong["chart"] is None


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda y: lc.on_measure_local("name: [", runs=5), "YAML error"),
        (lambda y: lc.on_measure_local("", runs=5), "no design yet"),
        (lambda y: lc.on_measure_local(y, runs=0), "runs=0 is out of range"),
        (lambda y: lc.on_measure_local(y, runs=5, threads=10**6), "threads=1000000 is out of range"),
        (lambda y: lc.on_measure_board(y, "127.0.0.1", 8765, "", runs=5), "enter the agent's token"),
        (lambda y: lc.on_measure_board(y, "", 8765, "t", runs=5), "no board address"),
        (lambda y: lc.on_measure_board(y, "ftp://x", 8765, "t", runs=5), "bad board address"),
        (lambda y: lc.on_predict(y, ""), "choose a device profile"),
        (lambda y: lc.on_predict(y, "no-such-board"), "no device profile 'no-such-board'"),
    ],
)
def test_mistakes_are_one_line_messages(small_yaml: str, call: Callable[[str], dict], message: str) -> None:
    result = call(small_yaml)
    assert result["status"].startswith("⚠") and message in result["status"].replace("&#x27;", "'")
    assert "Traceback" not in result["status"] and "\n" not in result["status"] and result["chart"] is None


def test_unreachable_board_is_reported_quickly(small_yaml: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])  # nothing listens there once the socket closes
    monkeypatch.setenv("EXPLORER_BOARDS", f"127.0.0.1:{port}")
    start = time.monotonic()
    result = lc.on_measure_board(small_yaml, "127.0.0.1", port, "t", runs=5)
    assert "unreachable" in result["status"] and time.monotonic() - start < 10


def test_a_board_nobody_allowed_is_refused_before_any_connection(small_yaml: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Open or closed, a port outside the allowed boards gets the same refusal and no connection."""
    monkeypatch.delenv("EXPLORER_BOARDS", raising=False)
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        listening.setblocking(False)
        closed.bind(("127.0.0.1", 0))  # bound, not listening: a closed port
        statuses = []
        for sock in (listening, closed):
            port = sock.getsockname()[1]
            status = lc.on_measure_board(small_yaml, "127.0.0.1", port, "t", runs=5)["status"]
            statuses.append(status.replace(str(port), "PORT"))
        with pytest.raises(BlockingIOError):
            listening.accept()  # nobody connected
    assert statuses[0] == statuses[1]
    assert "not one of the boards this server may contact" in statuses[0] and "--board 127.0.0.1:PORT" in statuses[0]
    for host in ("10.0.0.5", "localhost", "169.254.169.254", "2130706433"):
        assert "not one of the boards" in lc.on_measure_board(small_yaml, host, 8765, "t", runs=5)["status"]
    monkeypatch.setenv("EXPLORER_BOARDS", "10.0.0.5:9000, pi.local")
    status = lc.on_measure_board(small_yaml, "http://10.0.0.5:9001", None, "t", runs=5)["status"]
    assert "not one of the boards" in status


def test_latency_figure_draws_each_kind_and_role() -> None:
    points = [{"name": "a", "gmacs": 0.2, "ms": 3.0, "kind": "measured here", "design": True},
              {"name": "b", "gmacs": 0.3, "ms": 5.0, "kind": "measured here", "design": False},
              {"name": "c", "gmacs": 0.1, "ms": 2.0, "kind": "predicted: host", "design": False}]
    fig = latency_figure(points, "t")
    assert [(t.name, list(t.text)) for t in fig.data] == [
        ("presets (measured here)", ["b"]), ("your design (measured here)", ["a"]),
        ("presets (predicted: host)", ["c"])]
    assert fig.layout.xaxis.title.text.startswith("GMACs") and "ms" in fig.layout.yaxis.title.text


def test_the_tab_lays_out_its_controls() -> None:
    with gr.Blocks() as demo:
        state = gr.State("")
        with gr.Tab("Latency"):
            build_latency_tab(state)
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"lat-local", "lat-board", "lat-predict", "lat-host", "lat-port", "lat-token", "lat-profile",
            "lat-chart", "lat-status"} <= ids
    token = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "lat-token")
    assert token.type == "password"
    profile = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "lat-profile")
    assert {"cortex-a72", "host"} <= {c[0] for c in profile.choices}
