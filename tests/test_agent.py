"""The board agent in a subprocess on 127.0.0.1, with real ONNX Runtime: measurements and refusals."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from explorer.export import onnx_bytes
from explorer.latency.client import RemoteError, health, measure_remote
from explorer.presets import load_preset
from explorer.analysis import with_input_size
from explorer.ui.app import free_port

AGENT = Path(__file__).resolve().parents[1] / "explorer" / "latency" / "agent.py"
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The standalone agent file run by plain Python (as on a board), 16 MiB limit, log captured."""
    port = free_port()
    log = tmp_path_factory.mktemp("agent") / "agent.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(AGENT), "--token", TOKEN, "--port", str(port), "--max-mb", "16"],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            health(url, TOKEN, timeout=2)
            break
        except RemoteError:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
    try:
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def tiny_model() -> bytes:
    return onnx_bytes(with_input_size(load_preset("mobilenetv3_small"), 64))


def _raw(url: str, request: bytes, read: bool = True) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        if not read:
            return b""
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_agent_file_needs_only_stdlib_numpy_onnxruntime() -> None:
    imports = {line.split()[1].split(".")[0] for line in AGENT.read_text().splitlines()
               if line.startswith(("import ", "from ")) and not line.startswith("from __future__")}
    import_lines_inside = [l.strip() for l in AGENT.read_text().splitlines() if l.startswith("    import ")]
    imports |= {l.split()[1].split(".")[0] for l in import_lines_inside}
    assert imports - set(sys.stdlib_module_names) == {"numpy", "onnxruntime"}


def test_good_measurement_returns_stats_and_device_facts(agent, tiny_model: bytes) -> None:
    url, _ = agent
    result = measure_remote(url, TOKEN, tiny_model, runs=5, warmup=1)
    assert result["runs"] == 5 and result["threads"] == 1 and result["backend"] == "onnxruntime-cpu"
    assert 0 < result["median_ms"] <= result["p90_ms"] and result["cv"] >= 0
    assert {"machine", "cpu", "cores", "onnxruntime"} <= set(result["device"])


def test_missing_or_wrong_token_is_401(agent, tiny_model: bytes) -> None:
    url, log = agent
    for token in ("", "wrong"):
        with pytest.raises(RemoteError, match="401"):
            measure_remote(url, token, tiny_model, runs=1)
    assert "401 missing or wrong token" in log.read_text()


def test_oversized_model_is_413_before_the_body_is_read(agent) -> None:
    url, log = agent
    reply = _raw(url, (f"POST /measure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                       f"Content-Length: {5 * 2**30}\r\n\r\n").encode())  # declares 5 GiB, sends nothing
    assert reply.startswith(b"HTTP/1.1 413") and b"over the limit" in reply
    assert "413" in log.read_text()
    # through the client, which is still sending when the agent answers: it learns why from /health
    with pytest.raises(RemoteError, match="413 model of 17825792 bytes is over its limit of 16777216 bytes"):
        measure_remote(url, TOKEN, bytes(17 * 2**20), runs=1)


def test_garbage_body_is_400_with_the_reason(agent) -> None:
    url, _ = agent
    with pytest.raises(RemoteError, match="400 not a loadable ONNX model"):
        measure_remote(url, TOKEN, b"this is not onnx" * 10, runs=1)


@pytest.mark.parametrize("runs,warmup,threads", [(0, 1, 1), (10**7, 1, 1), (5, -1, 1), (5, 1, 0), (5, 1, 10**4)])
def test_absurd_settings_are_400(agent, tiny_model: bytes, runs: int, warmup: int, threads: int) -> None:
    url, _ = agent
    with pytest.raises(RemoteError, match="400 bad run settings"):
        measure_remote(url, TOKEN, tiny_model, runs=runs, warmup=warmup, threads=threads)


def test_non_numeric_settings_and_unknown_paths(agent) -> None:
    url, _ = agent
    reply = _raw(url, (f"POST /measure?runs=many HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                       f"Content-Length: 3\r\n\r\nabc").encode())
    assert reply.startswith(b"HTTP/1.1 400")
    reply = _raw(url, f"GET /secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 404")


def test_dropped_connection_mid_body_leaves_the_agent_serving(agent, tiny_model: bytes) -> None:
    url, log = agent
    _raw(url, (f"POST /measure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
               f"Content-Length: {len(tiny_model)}\r\n\r\n").encode() + tiny_model[:1000], read=False)
    deadline = time.monotonic() + 10
    while "connection dropped" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "connection dropped" in log.read_text()
    assert measure_remote(url, TOKEN, tiny_model, runs=2, warmup=0)["runs"] == 2


def test_one_measurement_at_a_time(agent, tiny_model: bytes) -> None:
    url, _ = agent
    outcomes: list[str] = []

    def long_run() -> None:
        outcomes.append(str(measure_remote(url, TOKEN, tiny_model, runs=3000, warmup=0)["runs"]))

    worker = threading.Thread(target=long_run)
    worker.start()
    deadline = time.monotonic() + 20
    while not health(url, TOKEN)["busy"] and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(RemoteError, match="503 busy"):
        measure_remote(url, TOKEN, tiny_model, runs=1)
    worker.join(timeout=120)
    assert outcomes == ["3000"]


def test_unreachable_board_gives_a_clear_message(tiny_model: bytes) -> None:
    with pytest.raises(RemoteError, match="unreachable"):
        measure_remote(f"http://127.0.0.1:{free_port()}", TOKEN, tiny_model, timeout=5)
    with pytest.raises(RemoteError, match="bad board address"):
        measure_remote("ftp://", TOKEN, tiny_model)


def test_latency_command_uses_the_agent(agent, capsys: pytest.CaptureFixture[str]) -> None:
    from explorer.cli import main

    url, _ = agent
    assert main(["latency", "mobilenetv3_small", "--input", "64", "--runs", "3", "--remote", url, "--token", TOKEN,
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["runs"] == 3 and result["backend"] == "onnxruntime-cpu"
    assert main(["latency", "mobilenetv3_small", "--input", "64", "--remote", url, "--token", "bad"]) == 2
    assert "401" in capsys.readouterr().err
