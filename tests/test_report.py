"""``explorer report``: one self-contained HTML file of a design, its counts, charts, YAML and store records."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from explorer.analysis import analyze
from explorer.cli import main
from explorer.design import load_design, retarget
from explorer.report import records_from_store, report_html, write_report
from explorer.store import StepRow, Store
from tests.tiny_designs import tiny_design

HOSTILE = '</script><script>alert("x")</script><img src=x onerror=alert(1)> & "q"'


def _store_with_records(path: Path, spec_dict: dict) -> tuple[Store, int]:
    """A store holding one latency measurement and one finished run (with a curve) of ``spec_dict``."""
    store = Store(path)
    design_id = store.save_design(load_design(spec_dict))
    store.save_latency(design_id, "onnxruntime", "host", 1.234, threads=1, runs=20, p90_ms=1.5, cv=0.05)
    # the copy a run trained (another input size) is another design; its measurements belong to the report too
    trained_id = store.save_design(retarget(load_design(spec_dict), input_size=32), "trained copy (32×32)")
    store.save_latency(trained_id, "onnxruntime", "host", 2.5, threads=1, runs=20)
    run_id = store.start_run(design_id, "digits", {"input_size": 16, "steps": 20, "trained_design_id": trained_id})
    store.log_steps(run_id, [StepRow(step=10, train_loss=2.0, seconds=0.5),
                             StepRow(step=20, train_loss=1.5, val_accuracy=0.42, seconds=1.0)])
    store.finish_run(run_id, "finished", {"steps": 20, "val_accuracy": 0.42, "macs": 1_000_000, "params": 5000,
                                          "final_train_loss": 1.5})
    return store, run_id


def test_report_is_self_contained_and_complete(tmp_path: Path) -> None:
    spec = load_design(tiny_design("tiny-report"))
    store, run_id = _store_with_records(tmp_path / "s.sqlite", tiny_design("tiny-report"))
    store.save_design(load_design(tiny_design("someone-else")))  # another design's rows stay out
    records = records_from_store(store, spec)
    assert [r.id for r in records.runs] == [run_id] and len(records.runs[0].curve) == 2
    assert sorted((r["design_name"], r["median_ms"]) for r in records.latency) == [
        ("tiny-report", 1.234), ("trained copy (32×32)", 2.5)]
    page = report_html(spec, records, with_presets=False)
    a = analyze(spec)
    # plotly.js inlined exactly once; nothing loaded from elsewhere
    assert page.count("<script") - page.count("Plotly.newPlot(") == 1
    assert len(re.findall(r"<script[^>]*\bsrc=", page)) == 0 and "<link" not in page
    for part in ('id="totals"', 'id="units-table"', 'id="spec-yaml"', 'id="latency-table"', 'id="runs-table"',
                 'id="fig-diagram"', 'id="fig-bars"', 'id="fig-curves"', 'id="fig-accuracy"'):
        assert part in page, part
    assert 'id="fig-presets"' not in page
    assert f'data-value="{a.params}"' in page and f'data-value="{a.macs}"' in page
    assert page.count("<tr>") == len(a.blocks) + 2 + 1 + 3  # units, two latency rows, one run + three headers
    assert "1.234" in page and "42.0 %" in page
    store.close()


def test_no_store_sections_without_records() -> None:
    page = report_html(load_design(tiny_design()), None, with_presets=False)
    assert 'id="latency"' not in page and 'id="runs"' not in page


def test_empty_store_says_so(tmp_path: Path) -> None:
    with Store(tmp_path / "e.sqlite") as store:
        page = report_html(load_design(tiny_design()), records_from_store(store, load_design(tiny_design())),
                           with_presets=False)
    assert 'id="no-latency"' in page and 'id="no-runs"' in page


def test_everything_from_the_spec_is_escaped() -> None:
    d = tiny_design("evil")
    d["description"] = HOSTILE
    d["stages"][0]["name"] = "s</script><b>1"
    page = report_html(load_design(d), None, with_presets=False)
    assert "<img src=x" not in page and 'alert("x")</script>' not in page and "<b>1" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    # the figures' JSON cannot end its script element: the only </script> tags are the page's own
    assert page.count("</script>") == page.count("<script")
    # and the escaped JSON reads back to the same text
    blob = re.search(r"var f = (\{.*?\});\nPlotly", page, re.S)
    assert blob is not None and isinstance(json.loads(blob.group(1)), dict)


def test_cli_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_path = tmp_path / "tiny.yaml"
    spec_path.write_text(load_design(tiny_design("tiny-cli")).to_yaml())
    store, _ = _store_with_records(tmp_path / "s.sqlite", tiny_design("tiny-cli"))
    store.close()
    out = tmp_path / "design.html"
    assert main(["report", str(spec_path), "-o", str(out), "--db", str(tmp_path / "s.sqlite"), "--no-presets",
                 "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["path"] == str(out) and info["bytes"] == out.stat().st_size
    page = out.read_text()
    assert "tiny-cli" in page and 'id="runs-table"' in page and "1.234" in page


@pytest.mark.parametrize(("argv", "message"), [
    (["report", "tiny.yaml", "-o", "x.txt"], "ending in .html"),
    (["report", "tiny.yaml", "-o", "out.html", "--db", "missing.sqlite"], "no store at"),
    (["report", "tiny.yaml", "-o", "nofolder/out.html", "--no-store"], "does not exist"),
    (["report", "no-such-preset", "-o", "out.html"], "no-such-preset"),
])
def test_cli_errors_are_one_line(argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(load_design(tiny_design()).to_yaml())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_write_report_refuses_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is a folder"):
        write_report(load_design(tiny_design()), tmp_path, with_presets=False)


def test_the_apps_report_callback_writes_the_current_design(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``on_report`` (the "Download report" button) without a browser: the file, with the UI store's runs."""
    from explorer.ui import report_callbacks

    monkeypatch.setattr(report_callbacks.tempfile, "gettempdir", lambda: str(tmp_path))
    store, run_id = _store_with_records(tmp_path / "ui.sqlite", tiny_design("tiny-ui"))
    monkeypatch.setattr(report_callbacks, "ui_store", lambda: store)
    update = report_callbacks.on_report(load_design(tiny_design("tiny-ui")).to_yaml())["report_file"]
    path = Path(update["value"])
    assert update["visible"] and path.is_file() and path.is_relative_to(tmp_path)
    page = path.read_text()
    assert "<h1 id=\"title\">tiny-ui</h1>" in page and 'id="runs-table"' in page and 'id="fig-presets"' in page
    store.close()
