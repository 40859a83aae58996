"""The board agent in a subprocess on 127.0.0.1, with real ONNX Runtime: measurements, refusals,
and the hostile clients of issue 10 (a trickled body, a flood of slow connections, a descriptor
limit, memory bombs, external data, error texts)."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from explorer.design import load_preset, retarget
from explorer.export import onnx_bytes
from explorer.latency.agent import MAX_WORKERS, check_model, clean_error
from explorer.latency.client import RemoteError, health, measure_remote
from explorer.ui.browser_tools import free_port, stop_process

AGENT = Path(__file__).resolve().parents[1] / "explorer" / "latency" / "agent.py"
TOKEN = "s3cret-token"
MiB = 2**20
Agent = tuple[str, Path]  # url, log
Strict = tuple[str, Path, subprocess.Popen]  # url, log, process


def start_agent(log: Path, *options: str, nofile: int | None = None) -> tuple[subprocess.Popen, str]:
    """The standalone agent file run by plain Python (as on a board); returns once /health answers."""
    port = free_port()
    command = [sys.executable, str(AGENT), "--token", TOKEN, "--port", str(port), *options]
    if nofile:  # the same file, under a lower descriptor limit
        command = [sys.executable, "-c", "import resource, runpy, sys; "
                   f"resource.setrlimit(resource.RLIMIT_NOFILE, ({nofile}, {nofile})); "
                   f"sys.argv = {command[1:]!r}; runpy.run_path(sys.argv[0], run_name='__main__')"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            health(url, TOKEN, timeout=2)
            return proc, url
        except RemoteError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"the agent did not start: {log.read_text()}") from None
            time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    stop_process(proc)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The agent with a 16 MiB model limit and default time-outs, log captured."""
    log = tmp_path_factory.mktemp("agent") / "agent.log"
    proc, url = start_agent(log, "--max-mb", "16")
    try:
        yield url, log
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    """The agent with short deadlines and a 256 MiB memory budget, for the hostile clients."""
    log = tmp_path_factory.mktemp("strict") / "agent.log"
    proc, url = start_agent(log, "--read-timeout", "3", "--header-timeout", "3", "--measure-timeout", "6",
                            "--max-memory-mb", "256")
    try:
        yield url, log, proc
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def tiny_model() -> bytes:
    return onnx_bytes(retarget(load_preset("mobilenetv3_small"), input_size=64))


_vi = helper.make_tensor_value_info


def _model(nodes: list, inputs: list, outputs: list, initializers: list = ()) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    # IR version 8 (opset 17's): what the exporter writes and old ONNX Runtimes (1.19: IR <= 10) read
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def memory_bomb() -> bytes:
    """153 bytes of ONNX that ask for 2^30 floats (4 GiB): ConstantOfShape of a constant shape."""
    return _model([helper.make_node("ConstantOfShape", ["shape"], ["y"])], [],
                  [_vi("y", TensorProto.FLOAT, None)],
                  [helper.make_tensor("shape", TensorProto.INT64, [1], [2**30])])


def runtime_memory_bomb() -> bytes:
    """The same 4 GiB, with a shape known only at run time: ``|x| + 2^15`` for an int64 input x."""
    nodes = [helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Add", ["a", "k"], ["shape"]),
             helper.make_node("ConstantOfShape", ["shape"], ["y"])]
    return _model(nodes, [_vi("x", TensorProto.INT64, [2])],
                  [_vi("y", TensorProto.FLOAT, None)],
                  [helper.make_tensor("k", TensorProto.INT64, [2], [2**15, 2**15])])


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


def _threads(proc: subprocess.Popen) -> int:
    status = Path(f"/proc/{proc.pid}/status").read_text()
    return int(status.split("Threads:")[1].split()[0])


def _cpu_seconds(proc: subprocess.Popen) -> float:
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _wait_for(log: Path, text: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while text not in log.read_text():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# --- the file a board runs ----------------------------------------------------------------------


def test_agent_file_needs_only_stdlib_numpy_onnxruntime() -> None:
    lines = AGENT.read_text().splitlines()
    imports = {line.split()[1].split(".")[0] for line in lines
               if line.startswith(("import ", "from ")) and not line.startswith("from __future__")}
    imports |= {line.split()[1].split(".")[0] for line in lines if line.lstrip().startswith("import ")}
    assert imports - set(sys.stdlib_module_names) == {"numpy", "onnxruntime"}


# --- measurements and ordinary refusals -----------------------------------------------------------


def test_good_measurement_returns_stats_and_device_facts(agent: Agent, tiny_model: bytes) -> None:
    url, _ = agent
    result = measure_remote(url, TOKEN, tiny_model, runs=5, warmup=1)
    assert result["runs"] == 5 and result["threads"] == 1 and result["backend"] == "onnxruntime-cpu"
    assert 0 < result["median_ms"] <= result["p90_ms"] and result["cv"] >= 0
    assert {"machine", "cpu", "cores", "onnxruntime"} <= set(result["device"])


def test_replies_carry_no_host_name(agent: Agent, tiny_model: bytes) -> None:
    url, _ = agent
    node = platform.node()
    for reply in (health(url, TOKEN), measure_remote(url, TOKEN, tiny_model, runs=1, warmup=0)):
        assert "node" not in reply["device"]
        assert node not in {str(v) for v in reply["device"].values()}


def test_missing_or_wrong_token_is_401(agent: Agent, tiny_model: bytes) -> None:
    url, log = agent
    for token in ("", "wrong"):
        with pytest.raises(RemoteError, match="401"):
            measure_remote(url, token, tiny_model, runs=1)
    assert "401 missing or wrong token" in log.read_text()


def test_oversized_model_is_413_before_the_body_is_read(agent: Agent) -> None:
    url, log = agent
    reply = _raw(url, (f"POST /measure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                       f"Content-Length: {5 * 2**30}\r\n\r\n").encode())  # declares 5 GiB, sends nothing
    assert reply.startswith(b"HTTP/1.1 413") and b"over the limit" in reply
    assert "413" in log.read_text()
    # through the client, which is still sending when the agent answers: it learns why from /health
    with pytest.raises(RemoteError, match="413 model of 17825792 bytes is over its limit of 16777216 bytes"):
        measure_remote(url, TOKEN, bytes(17 * 2**20), runs=1)


def test_garbage_body_is_400_with_the_reason(agent: Agent) -> None:
    url, _ = agent
    with pytest.raises(RemoteError, match="400 not a loadable ONNX model"):
        measure_remote(url, TOKEN, b"this is not onnx" * 10, runs=1)


@pytest.mark.parametrize("runs,warmup,threads", [(0, 1, 1), (10**7, 1, 1), (5, -1, 1), (5, 1, 0), (5, 1, 10**4)])
def test_absurd_settings_are_400(agent: Agent, tiny_model: bytes, runs: int, warmup: int, threads: int) -> None:
    url, _ = agent
    with pytest.raises(RemoteError, match="400 bad run settings"):
        measure_remote(url, TOKEN, tiny_model, runs=runs, warmup=warmup, threads=threads)


def test_non_numeric_settings_and_unknown_paths(agent: Agent) -> None:
    url, _ = agent
    reply = _raw(url, (f"POST /measure?runs=many HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                       f"Content-Length: 3\r\n\r\nabc").encode())
    assert reply.startswith(b"HTTP/1.1 400")
    reply = _raw(url, f"GET /secrets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 404")
    reply = _raw(url, b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 20000 + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 431")


def test_dropped_connection_mid_body_leaves_the_agent_serving(agent: Agent, tiny_model: bytes) -> None:
    url, log = agent
    _raw(url, (f"POST /measure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
               f"Content-Length: {len(tiny_model)}\r\n\r\n").encode() + tiny_model[:1000], read=False)
    assert _wait_for(log, "connection dropped", 10)
    assert measure_remote(url, TOKEN, tiny_model, runs=2, warmup=0)["runs"] == 2


@pytest.mark.slow
def test_one_measurement_at_a_time(agent: Agent, tiny_model: bytes) -> None:
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


def test_latency_command_uses_the_agent(agent: Agent, capsys: pytest.CaptureFixture[str]) -> None:
    from explorer.cli import main

    url, _ = agent
    assert main(["latency", "mobilenetv3_small", "--input", "64", "--runs", "3", "--remote", url, "--token", TOKEN,
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["runs"] == 3 and result["backend"] == "onnxruntime-cpu"
    assert main(["latency", "mobilenetv3_small", "--input", "64", "--remote", url, "--token", "bad"]) == 2
    assert "401" in capsys.readouterr().err


# --- hostile clients ------------------------------------------------------------------------------


def test_a_trickled_body_neither_blocks_measurements_nor_outlives_the_deadline(strict: Strict,
                                                                                tiny_model: bytes) -> None:
    """A token holder sending one byte every 0.5 s: the old agent took the busy lock first (every
    measurement got 503) and timed each read (never dropped); now the body has 3 s in all."""
    url, log, _ = strict
    host, port = url.removeprefix("http://").split(":")
    dropped_after: list[float] = []

    def trickle() -> None:
        with socket.create_connection((host, int(port)), timeout=15) as s:
            s.sendall((f"POST /measure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                       f"Content-Length: 1000\r\n\r\n").encode())
            t0 = time.monotonic()
            for _ in range(30):  # at most 15 s
                try:
                    s.sendall(b"x")
                except OSError:
                    break
                time.sleep(0.5)
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        break
                except BlockingIOError:
                    pass
                except OSError:
                    break
                finally:
                    s.setblocking(True)
            dropped_after.append(time.monotonic() - t0)

    sender = threading.Thread(target=trickle)
    sender.start()
    time.sleep(0.5)
    assert measure_remote(url, TOKEN, tiny_model, runs=2, warmup=0)["runs"] == 2  # not 503 busy
    sender.join(timeout=30)
    assert dropped_after and dropped_after[0] < 8, dropped_after
    assert "did not send its 1000-byte body within 3 s" in log.read_text()


def test_a_flood_of_slow_headers_keeps_health_answering_with_bounded_threads(strict: Strict, tiny_model: bytes) -> None:
    """200 connections that send half a request line: the old agent held one thread each."""
    url, log, proc = strict
    host, port = url.removeprefix("http://").split(":")
    flood = []
    try:
        for _ in range(200):
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"GET /hea")
            flood.append(s)
        time.sleep(1.0)  # time for a thread-per-connection server to have started its threads
        t0 = time.monotonic()
        assert health(url, TOKEN, timeout=5)["ok"]
        assert time.monotonic() - t0 < 2.0
        assert _threads(proc) <= MAX_WORKERS + 4
        assert measure_remote(url, TOKEN, tiny_model, runs=1, warmup=0)["runs"] == 1
        # the header deadline (3 s) closes them all
        deadline = time.monotonic() + 10
        for s in flood:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            assert s.recv(10) == b""
    finally:
        for s in flood:
            s.close()
    assert "no complete request headers within 3 s" in log.read_text()


def test_at_a_descriptor_limit_the_agent_neither_spins_nor_stops_answering(tmp_path: Path) -> None:
    """At 128 descriptors, 300 slow connections: the oldest are dropped, /health answers, CPU stays low."""
    proc, url = start_agent(tmp_path / "agent.log", nofile=128)
    host, port = url.removeprefix("http://").split(":")
    flood = []
    try:
        give_up = time.monotonic() + 15  # a server that stopped accepting makes each connect wait
        for _ in range(300):
            if time.monotonic() > give_up:
                break
            try:
                s = socket.create_connection((host, int(port)), timeout=0.5)
                s.sendall(b"GET /hea")
                flood.append(s)
            except OSError:
                pass
        cpu0, t0 = _cpu_seconds(proc), time.monotonic()
        time.sleep(2.0)
        assert health(url, TOKEN, timeout=5)["ok"]
        assert time.monotonic() - t0 < 4.5
        assert _cpu_seconds(proc) - cpu0 < 1.0  # not spinning at 100 %
        assert _threads(proc) <= MAX_WORKERS + 4
    finally:
        for s in flood:
            s.close()
        stop(proc)


def test_a_memory_bomb_is_refused_before_it_runs(strict: Strict) -> None:
    url, _, proc = strict
    bomb = memory_bomb()
    assert len(bomb) < 200
    t0 = time.monotonic()
    refusal = r"400 the output of ConstantOfShape .*\(4\.0 GiB\).* memory limit of 256 MiB"
    with pytest.raises(RemoteError, match=refusal):
        measure_remote(url, TOKEN, bomb, runs=1)
    assert time.monotonic() - t0 < 5
    peak_kib = int(Path(f"/proc/{proc.pid}/status").read_text().split("VmHWM:")[1].split()[0])
    assert peak_kib < 1024 * 1024  # the agent never held the 4 GiB


def test_a_memory_bomb_known_only_at_run_time_hits_the_memory_limit(strict: Strict, tiny_model: bytes) -> None:
    url, _, _ = strict
    bomb = runtime_memory_bomb()
    check_model(bomb, 256 * MiB)  # nothing static to see: the shape is computed from the input
    with pytest.raises(RemoteError, match=r"400 the model needs more memory than the agent allows \(256 MiB"):
        measure_remote(url, TOKEN, bomb, runs=1)
    assert measure_remote(url, TOKEN, tiny_model, runs=1, warmup=0)["runs"] == 1  # and it goes on serving


@pytest.mark.slow
def test_a_measurement_past_its_time_limit_is_stopped(strict: Strict) -> None:
    url, _, _ = strict
    weight = helper.make_tensor("w", TensorProto.FLOAT, [64, 64, 3, 3], np.zeros(64 * 64 * 9, np.float32).tobytes(),
                                raw=True)
    slow = _model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [_vi("x", TensorProto.FLOAT,
                  [1, 64, 128, 128])], [_vi("y", TensorProto.FLOAT, None)], [weight])  # 0.6 GMACs a run
    with pytest.raises(RemoteError, match="400 the measurement took longer than the agent's limit of 6 s"):
        measure_remote(url, TOKEN, slow, runs=10_000, warmup=0)
    assert not health(url, TOKEN)["busy"]


def test_external_data_is_refused_without_reading_the_file(strict: Strict) -> None:
    url, _, _ = strict
    weight = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="../../etc/hostname")
    model = _model([helper.make_node("Add", ["x", "w"], ["y"])], [_vi("x", TensorProto.FLOAT, [2])],
                   [_vi("y", TensorProto.FLOAT, [2])], [weight])
    with pytest.raises(RemoteError, match="400 initializer 'w' keeps its data in an external file") as caught:
        measure_remote(url, TOKEN, model, runs=1)
    assert "hostname" not in str(caught.value)


def test_runtime_errors_carry_no_source_paths(strict: Strict) -> None:
    url, _, _ = strict
    model = _model([helper.make_node("Reshape", ["x", "s"], ["y"])], [_vi("x", TensorProto.FLOAT, [6])],
                   [_vi("y", TensorProto.FLOAT, None)],
                   [helper.make_tensor("s", TensorProto.INT64, [1], [7])])
    with pytest.raises(RemoteError, match="cannot be reshaped") as caught:
        measure_remote(url, TOKEN, model, runs=1)
    text = str(caught.value)
    assert "onnxruntime_src" not in text and "onnxruntime::" not in text and ".h:" not in text


# --- the model check and the error cleaner, as pure functions ---------------------------------------


def test_clean_error_drops_paths_frames_and_the_host_name() -> None:
    raw = ("[ONNXRuntimeError] : 1 : FAIL : Status Message: "
           "/onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:360 "
           "void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, onnxruntime::Stream*) Failed to allocate "
           f"memory for requested buffer of size 4294967296 on {platform.node()}\nsecond line\nthird line")
    text = clean_error(raw)
    assert "Failed to allocate memory for requested buffer of size 4294967296 on <host>" in text
    assert "/" not in text and "::" not in text and "third line" not in text
    assert len(clean_error("x" * 5000)) == 300


def test_exported_presets_pass_the_model_check(tiny_model: bytes) -> None:
    check_model(tiny_model, 1024 * MiB)
    check_model(onnx_bytes(retarget(load_preset("attendnext"), input_size=64)), 1024 * MiB)


@pytest.mark.parametrize("model,message", [
    (lambda: b"\x0a\xff\xff\xff\xff\x0f", "not a loadable ONNX model"),
    (lambda: b"", "no graph"),
    (lambda: _model([helper.make_node("Expand", ["x", "s"], ["y"])], [_vi("x", TensorProto.FLOAT, [1])],
                    [_vi("y", TensorProto.FLOAT, None)],
                    [helper.make_tensor("s", TensorProto.INT64, [2], [2**16, 2**16])]), "Expand"),
    (lambda: _model([helper.make_node("Tile", ["x", "r"], ["y"])], [_vi("x", TensorProto.FLOAT, [1024])],
                    [_vi("y", TensorProto.FLOAT, None)],
                    [helper.make_tensor("r", TensorProto.INT64, [1], [2**20])]), "Tile"),
    (lambda: _model([helper.make_node("Range", ["a", "b", "c"], ["y"])], [],
                    [_vi("y", TensorProto.FLOAT, None)],
                    [helper.make_tensor("a", TensorProto.FLOAT, [], [0.0]),
                     helper.make_tensor("b", TensorProto.FLOAT, [], [1e9]),
                     helper.make_tensor("c", TensorProto.FLOAT, [], [1.0])]), "Range"),
    (lambda: _model([helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Mul", ["s", "k"], ["t"]),
                     helper.make_node("ConstantOfShape", ["t"], ["y"])],
                    [_vi("x", TensorProto.FLOAT, [1, 1])],
                    [_vi("y", TensorProto.FLOAT, None)],
                    [helper.make_tensor("k", TensorProto.INT64, [2], [2**15, 2**15])]), "ConstantOfShape"),
    (lambda: _model([helper.make_node("Identity", ["x"], ["y"])],
                    [_vi("x", TensorProto.FLOAT, [1, 3, 2**15, 2**15])],
                    [_vi("y", TensorProto.FLOAT, None)]), "declared shape"),
    (lambda: _model([helper.make_node("Pad", ["x", "p"], ["y"])], [_vi("x", TensorProto.FLOAT, [1, 1])],
                    [_vi("y", TensorProto.FLOAT, None)],
                    [helper.make_tensor("p", TensorProto.INT64, [4], [0, 0, 2**15, 2**15])]), "Pad"),
])
def test_the_model_check_refuses(model: Callable[[], bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_model(model(), 256 * MiB)


def test_the_model_check_refuses_deep_subgraphs_and_large_initializers() -> None:
    leaf = helper.make_graph([helper.make_node("Identity", ["c"], ["o"])], "b", [],
                             [_vi("o", TensorProto.BOOL, [])])
    body = leaf
    for _ in range(20):
        body = helper.make_graph([helper.make_node("If", ["c"], ["o"], then_branch=body, else_branch=leaf)], "b", [],
                                 [_vi("o", TensorProto.BOOL, [])])
    nested = helper.make_model(body, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(ValueError, match="nested more than 16 deep"):
        check_model(nested, 256 * MiB)
    big = helper.make_tensor("w", TensorProto.FLOAT, [2**20], np.zeros(2**20, np.float32).tobytes(), raw=True)
    model = _model([helper.make_node("Identity", ["w"], ["y"])], [],
                   [_vi("y", TensorProto.FLOAT, None)], [big])
    check_model(model, 8 * MiB)
    with pytest.raises(ValueError, match="initializer 'w' would hold 1,048,576 elements"):
        check_model(model, 2 * MiB)
    assert onnx.load_from_string(model).graph.initializer[0].name == "w"
