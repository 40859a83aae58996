"""``benchmarks/int8.py``: its options and its report of the calibration draws (training and
quantization replaced by stand-ins, so only the script's own bookkeeping is under test)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from benchmark_module import load_benchmark

int8 = load_benchmark("int8")


def test_fp32_choices_parse_and_refuse() -> None:
    names = ["mobileone_s1", "attendnext"]
    assert int8._fp32_choices(["mobileone_s1=stem", "mobileone_s1=s1.b1,s2"], names) == {
        "mobileone_s1": ["stem", "s1.b1", "s2"]}
    for bad in ("mobileone_s1", "nosuch=stem", "attendnext="):
        with pytest.raises(SystemExit, match="PRESET=UNITS"):
            int8._fp32_choices([bad], names)


def test_bad_options_exit_before_any_training() -> None:
    with pytest.raises(SystemExit, match="--methods 'magic'"):
        int8.main(["--presets", "attendnext", "--methods", "magic", "--no-write"])
    with pytest.raises(SystemExit, match="--calib-seeds 0"):
        int8.main(["--presets", "attendnext", "--calib-seeds", "0", "--no-write"])


def test_draws_report_mean_drop_and_range(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import explorer.data
    import explorer.quantize
    import explorer.train

    calls: list[dict[str, Any]] = []
    int8_top1 = {0: 0.90, 1: 0.80, 2: 0.85}  # fp32 0.90: drops 0, 10 and 5 points over the three draws

    def fake_quantize(name: str, output: Path, **kw: Any) -> Any:
        calls.append(kw | {"name": name})
        return SimpleNamespace(fp32_accuracy=0.90, int8_accuracy=int8_top1[kw["seed"]], top1_agreement=0.9,
                               fp32_ms=2.0, int8_ms=1.0, speedup=2.0, fp32_bytes=2**20, int8_bytes=2**18,
                               fp32_units=["stem.b1"] if kw["keep_fp32"] else [])

    monkeypatch.setattr(explorer.quantize, "quantize", fake_quantize)
    monkeypatch.setattr(explorer.train, "train", lambda *a, **k: SimpleNamespace(weights_path="w.pt"))
    monkeypatch.setattr(explorer.data, "load_dataset", lambda *a, **k: SimpleNamespace(
        describe=lambda: "fake data", val_y=[0] * 10))
    assert int8.main(["--presets", "mobileone_s1", "--calib-seeds", "3", "--methods", "minmax", "percentile",
                      "--fp32", "mobileone_s1=stem", "--hardswish", "clip", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert [c["seed"] for c in calls] == [0, 1, 2, 0, 1, 2]
    assert [c["method"] for c in calls] == ["minmax"] * 3 + ["percentile"] * 3
    assert all(c["keep_fp32"] == ["stem"] and c["hardswish"] == "clip" for c in calls)
    assert [c["runs"] for c in calls[:3]] == [60, 2, 2]  # only the first draw is timed in full
    assert "| mobileone_s1 | minmax | stem.b1 |" in out and "+5.0 | +0.0 … +10.0 |" in out
    assert "worst mobileone_s1 +5.0 — **not met**" in out
    assert "--fp32 mobileone_s1=stem" in out and "--hardswish clip" in out
