"""User-provided text printed by the command line is escaped: a design name with an ANSI escape
sequence or a bidirectional override is shown, never executed by the terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from explorer.cli import main
from explorer.design import load_preset
from explorer.terminal import EscapingStream, safe_text

HOSTILE = "\x1b[31mred\x1b]0;title\x07\u202egnp.exe\x9b2J"


def test_safe_text_escapes_controls_and_keeps_printable_text() -> None:
    assert safe_text("résumé × 2 — 漢字") == "résumé × 2 — 漢字"
    assert safe_text(HOSTILE) == "\\x1b[31mred\\x1b]0;title\\x07\\u202egnp.exe\\x9b2J"
    assert safe_text("a\nb\tc\rd") == "a\\x0ab\\x09c\\x0dd"
    assert safe_text("a\nb", keep="\n") == "a\nb"
    assert safe_text(safe_text(HOSTILE)) == safe_text(HOSTILE)  # idempotent: escapes are printable


def test_escaping_stream_keeps_lines_and_progress_bar_redraws() -> None:
    buf = io.StringIO()
    stream = EscapingStream(buf)
    assert stream.write("\r 50%|#####     | 5/10") == len("\r 50%|#####     | 5/10")
    stream.write(f"name {HOSTILE}\r\n")
    assert buf.getvalue() == "\r 50%|#####     | 5/10name \\x1b[31mred\\x1b]0;title\\x07\\u202egnp.exe\\x9b2J\\x0d\n"


@pytest.fixture()
def hostile_spec(tmp_path: Path) -> Path:
    data = load_preset("mobilenetv3_small").to_dict()
    data["name"] = HOSTILE
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_summarize_prints_a_hostile_name_escaped(hostile_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summarize", str(hostile_spec)]) == 0
    out = capsys.readouterr().out
    assert "\\x1b[31mred" in out and "\\u202e" in out
    assert "\x1b" not in out and "\u202e" not in out and "\x9b" not in out and "\x07" not in out


def test_json_output_is_unchanged_and_errors_are_escaped(hostile_spec: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summarize", str(hostile_spec), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == HOSTILE  # JSON escapes by itself; still parses
    assert main(["summarize", "no-such-\x1b[2Jdesign"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "\\x1b[2J" in err and "\x1b" not in err
