"""The command line contract: presets, summarize (text and --json), one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.design import load_preset
from explorer.presets import list_presets


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_presets_lists_every_preset_with_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "presets", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == list_presets()
    assert all(r["params"] > 0 and r["macs"] > 0 for r in rows)
    code, out, _ = run(capsys, "presets")
    assert code == 0 and "attendnext" in out and "GMACs" in out


def test_summarize_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summarize", "mobilenetv3_small", "--json")
    data = json.loads(out)
    assert code == 0
    assert {"name", "params", "macs", "peak_activation_bytes", "blocks"} <= set(data)
    assert data["name"] == "mobilenetv3_small" and len(out.strip().splitlines()) == 1
    # issue 12 added each unit's memory traffic (fp32 and int8 bytes read and written)
    assert all(set(b) == {"name", "type", "out_shape", "params", "macs", "bytes_read", "bytes_written",
                          "bytes_read_int8", "bytes_written_int8"} for b in data["blocks"])
    assert sum(b["params"] for b in data["blocks"]) == data["params"]


def test_summarize_a_file_at_another_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(load_preset("attendnext").to_yaml())
    code, out, _ = run(capsys, "summarize", str(path), "--input", "160", "--json")
    assert code == 0 and json.loads(out)["blocks"][0]["out_shape"] == [1, 3, 80, 80]
    code, out, _ = run(capsys, "summarize", str(path))
    assert code == 0 and "params" in out and "s1.b1" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["summarize", "no_such_design"], "neither a preset"),
        (["summarize", "missing.yaml"], "no spec file at"),
        (["summarize", "attendnext", "--input", "3"], "input size 3 is out of range"),
        (["summarize", "attendnext", "--input", "x"], "invalid int value"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_code_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_broken_spec_file_reports_the_place(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nstages:\n  - blocks:\n      - {type: conv, out: 8, kernel: 4}\n")
    code, _, err = run(capsys, "summarize", str(path))
    assert code == 2 and "stage 1, block 1: kernel 4 is even" in err


def test_console_entry_point_runs_as_a_module() -> None:
    proc = subprocess.run([sys.executable, "-m", "explorer", "summarize", "nope"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
