"""The agent file alone, in a fresh venv with exactly the versions a board runs: Python 3.11,
numpy 1.24.2, onnxruntime 1.19.2 (Raspberry Pi OS bookworm's Python and numpy; the aarch64 run
itself was checked by an earlier review under qemu, this test checks the same versions' x86
wheels). The project's client measures through it, so nothing newer slips into ``agent.py``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from explorer.design import load_preset, retarget
from explorer.export import onnx_bytes
from explorer.latency.client import RemoteError, health, measure_remote
from explorer.ui.browser_tools import free_port, stop_process

pytestmark = pytest.mark.slow

AGENT = Path(__file__).resolve().parents[1] / "explorer" / "latency" / "agent.py"
BOARD_VERSIONS = {"numpy": "1.24.2", "onnxruntime": "1.19.2"}
TOKEN = "board-versions-token"
_OFFLINE = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
            "No route to host", "Max retries exceeded")


def _python311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if not found:
        pytest.skip("no Python 3.11 here: the board's Python (numpy 1.24.2 has no wheels for later ones)")
    return found


@pytest.fixture(scope="module")
def board_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A venv with only numpy 1.24.2 and onnxruntime 1.19.2 (and their own dependencies)."""
    venv = tmp_path_factory.mktemp("board") / "venv"
    subprocess.run([_python311(), "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    pins = [f"{name}=={version}" for name, version in BOARD_VERSIONS.items()]
    done = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--only-binary=:all:", *pins], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        if any(word in done.stderr for word in _OFFLINE):
            pytest.skip(f"pip cannot reach the package registry to install {' '.join(pins)}")
        raise AssertionError(f"pip install {' '.join(pins)} failed:\n{done.stderr[-3000:]}")
    return python


@pytest.fixture(scope="module")
def board_agent(board_python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``agent.py`` copied alone into an empty folder and run by the board venv's Python."""
    folder = tmp_path_factory.mktemp("agent-alone")
    shutil.copy(AGENT, folder / "agent.py")
    port = free_port()
    log = folder / "agent.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([board_python, "agent.py", "--token", TOKEN, "--port", str(port),
                                 "--max-memory-mb", "512"], cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                health(url, TOKEN, timeout=2)
                break
            except RemoteError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        yield url
    finally:
        stop_process(proc)


def test_the_venv_has_exactly_the_board_versions(board_python: str) -> None:
    code = ("import sys, numpy, onnxruntime; "
            "print(sys.version_info[0], sys.version_info[1], numpy.__version__, onnxruntime.__version__)")
    out = subprocess.run([board_python, "-c", code],
                         capture_output=True, text=True, check=True, timeout=120).stdout.split()
    assert out == ["3", "11", BOARD_VERSIONS["numpy"], BOARD_VERSIONS["onnxruntime"]]


def test_the_client_measures_through_the_agent_on_board_versions(board_agent: str) -> None:
    facts = health(board_agent, TOKEN)["device"]
    assert facts["onnxruntime"] == BOARD_VERSIONS["onnxruntime"] and facts["python"].startswith("3.11")
    for preset in ("mobilenetv3_small", "attendnext"):
        model = onnx_bytes(retarget(load_preset(preset), input_size=64))
        result = measure_remote(board_agent, TOKEN, model, runs=3, warmup=1)
        assert result["runs"] == 3 and 0 < result["median_ms"] <= result["p90_ms"]


def test_the_memory_bound_holds_on_board_versions(board_agent: str) -> None:
    from test_agent import memory_bomb, runtime_memory_bomb

    with pytest.raises(RemoteError, match="400 the output of ConstantOfShape"):
        measure_remote(board_agent, TOKEN, memory_bomb(), runs=1)
    with pytest.raises(RemoteError, match=r"400 the model needs more memory than the agent allows \(512 MiB"):
        measure_remote(board_agent, TOKEN, runtime_memory_bomb(), runs=1)
