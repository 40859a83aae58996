"""The latency commands: local measurement with progress, predictions per unit, export by suffix,
calibration end to end (real ONNX Runtime timings), and one-line refusals with exit code 2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from explorer.analysis import analyze
from explorer.cli import main
from explorer.design import load_preset, retarget
from explorer.latency.client import RemoteError, health
from explorer.latency.measure import measure_local
from explorer.latency.predictor import predict, predict_units
from explorer.latency.profiles import load_profile
from explorer.presets import assets_dir
from explorer.spec import expand_units

AGENT = Path(__file__).resolve().parents[1] / "explorer" / "latency" / "agent.py"
TOKEN = "calibration-token"


@pytest.fixture(scope="module")
def board_url() -> Iterator[str]:
    """The standalone agent on a free 127.0.0.1 port, as a board would run it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, str(AGENT), "--token", TOKEN, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            health(url, TOKEN, timeout=2)
            break
        except RemoteError:
            assert proc.poll() is None and time.monotonic() < deadline, "the agent did not start"
            time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_local_measurement_reports_progress_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[int, int]] = []
    stats = measure_local(retarget(load_preset("mobilenetv3_small"), input_size=64), runs=6, warmup=1,
                          progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 6) for i in range(1, 7)]
    assert stats["runs"] == 6 and stats["warmup"] == 1 and 0 <= stats["cv"] < 5
    code, out, _ = run(capsys, "latency", "mobilenetv3_small", "--input", "64", "--runs", "25", "--warmup", "2")
    assert code == 0 and "median" in out and "p90" in out and "cv" in out and "25 runs" in out
    assert "onnxruntime" in out and "this machine" in out
    code, out, _ = run(capsys, "latency", "mobilenetv3_small", "--input", "64", "--runs", "3", "--threads", "2",
                       "--json")
    assert code == 0 and json.loads(out)["threads"] == 2


def test_prediction_per_unit_adds_up(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPLORER_DEVICES", str(tmp_path))  # only the shipped profiles
    spec = retarget(load_preset("attendnext"), input_size=96)
    profile = load_profile("cortex-a72")
    units = predict_units(spec, profile)
    assert [u.address for u in units] == [u.address for u in expand_units(spec)]
    assert [u.name for u in units] == [u.name for u in expand_units(spec)]
    assert sum(u.ms for u in units) + profile.const_ms == pytest.approx(predict(spec, profile))
    assert all(u.ms > 0 and u.layers > 0 for u in units)
    code, out, _ = run(capsys, "latency", "attendnext", "--input", "96", "--predict", "cortex-a72", "--json")
    data = json.loads(out)
    assert code == 0 and data["predicted_ms"] == pytest.approx(predict(spec, profile))
    assert data["backend"] == "predictor" and data["calibrated"] is False and len(data["units"]) == len(units)
    # a unit's MACs are the design table's (the analysis), not a second count
    assert [u["macs"] for u in data["units"]] == [row.macs for row in analyze(spec).blocks]
    code, out, _ = run(capsys, "latency", "attendnext", "--input", "96", "--predict", "cortex-a72")
    assert code == 0 and "predicted" in out and "not calibrated" in out and "s1.b1" in out and "head" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["latency", "attendnext", "--remote", "http://127.0.0.1:9"], "needs the agent's token"),
        (["latency", "attendnext", "--remote", "http://x:1", "--predict", "host"], "not allowed with argument"),
        (["latency", "attendnext", "--threads", "0"], "threads=0 is out of range"),
        (["latency", "attendnext", "--runs", "100000"], "runs=100000 is out of range"),
        (["latency", "no_such_design"], "neither a preset"),
        (["agent"], "a token is required"),
        (["calibrate", "host", "--n", "5"], "at least 20 designs"),
        (["calibrate", "host", "--holdout", "0.95"], "--holdout 0.95 is out of range"),
        (["calibrate", "no-such-board"], "no device profile"),
        (["calibrate", "host", "--rounds", "0"], "--rounds 0 is out of range"),
        (["calibrate", "host", "--out", str(assets_dir() / "devices" / "host.yaml")], "is a shipped profile"),
    ],
)
def test_mistakes_are_one_line_with_code_2(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                           argv: list[str], message: str) -> None:
    monkeypatch.delenv("EXPLORER_AGENT_TOKEN", raising=False)
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_export_format_follows_the_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "small.pt"
    code, out, _ = run(capsys, "export", "mobilenetv3_small", "--input", "64", "-o", str(path))
    assert code == 0 and "weights_only=True" in out
    payload = torch.load(path, weights_only=True)
    assert payload["spec_yaml"].startswith("name: mobilenetv3_small") and "size: 64" in payload["spec_yaml"]
    code, out, _ = run(capsys, "export", "mobilenetv3_small", "--input", "64", "-o", str(tmp_path / "small.onnx"))
    assert code == 0 and "onnx.checker passed" in out and (tmp_path / "small.onnx").read_bytes()[:2] != b"PK"


@pytest.mark.slow
def test_calibrate_measures_fits_saves_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fitted" / "host.yaml"
    code, stdout, _ = run(capsys, "calibrate", "host", "--n", "20", "--input", "32", "--runs", "2", "--warmup", "0",
                          "--rounds", "1", "--out", str(out), "--json")
    report = json.loads(stdout)
    assert code == 0 and report["saved"] == str(out) and report["fit"] + report["held_out"] == 20
    assert report["fit"] >= 13 and 0.0 <= report["within_10pct"] <= 1.0 and report["median_abs_error_pct"] >= 0
    assert all(row["measured_ms"] > 0 and row["predicted_ms"] >= 0 for row in report["held_out_designs"])
    fitted = load_profile(out)
    assert fitted.calibration is not None and fitted.calibration.samples == report["fit"]
    assert fitted.calibration.within_10pct == report["within_10pct"]
    assert "local onnxruntime" in fitted.calibration.source
    assert fitted.compute_scale != load_profile(assets_dir() / "devices" / "host.yaml").compute_scale


@pytest.mark.slow
def test_calibrate_through_an_agent(board_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "board.yaml"
    code, _, err = run(capsys, "calibrate", "cortex-a72", "--remote", board_url, "--token", "wrong", "--out", str(out))
    assert code == 2 and "401" in err and not out.exists()  # refused before anything is measured
    code, stdout, _ = run(capsys, "calibrate", "cortex-a72", "--remote", board_url, "--token", TOKEN, "--n", "20",
                          "--input", "32", "--runs", "2", "--warmup", "0", "--rounds", "1", "--out", str(out), "--json")
    report = json.loads(stdout)
    assert code == 0 and report["fit"] + report["held_out"] == 20 and report["source"].startswith(f"agent {board_url}")
    fitted = load_profile(out)
    assert fitted.name == "cortex-a72" and fitted.calibration is not None
    assert fitted.calibration.source == report["source"]
