"""The analyzer: each kind of warning fires on the design that has the problem, names the unit and the fix."""

from __future__ import annotations

from typing import Any

from explorer.analysis import analyze
from explorer.design import load_design, load_preset
from explorer.design_warnings import design_warnings


def _warnings(stages: list[dict[str, Any]], stem: list[dict[str, Any]] | None = None, size: int = 32) -> list:
    spec = load_design({"name": "w", "input": {"channels": 3, "size": size}, "num_classes": 10,
                        "stem": stem if stem is not None else [{"type": "blurpool"}, {"type": "conv", "out": 16}],
                        "stages": stages, "head": {"type": "classifier"}})
    return design_warnings(spec, analyze(spec))


def _kinds(ws: list) -> list[str]:
    return [w.kind for w in ws]


def test_a_clean_design_has_no_warning() -> None:
    assert _warnings([{"blocks": [{"type": "blurpool"}, {"type": "dwsep", "out": 32}]}]) == []


def test_a_size_collapsing_to_1x1_before_the_head() -> None:
    ws = _warnings([{"repeat": 1, "blocks": [{"type": "blurpool"}] * 3 + [{"type": "dwsep", "out": 16}]}], size=16)
    (w,) = [w for w in ws if w.kind == "collapse"]
    assert w.place == "stage 1, block 3" and w.key == "1:3"
    assert "2×2 → 1×1" in w.message and "1 unit before the head" in w.message
    assert "stride-2" in w.fix


def test_a_stride_2_unit_without_anti_aliasing() -> None:
    ws = _warnings([{"repeat": 2, "blocks": [{"type": "ir", "out": 32, "stride": 2}]}])
    (w,) = [w for w in ws if w.kind == "aliasing"]  # once: the stage's copy runs at stride 1
    assert w.place == "stage 1, block 1" and "anti_alias: true" in w.fix
    assert "aliasing" not in _kinds(_warnings([{"blocks": [{"type": "ir", "out": 32, "stride": 2,
                                                               "anti_alias": True}]}]))
    (m,) = _warnings([{"blocks": [{"type": "mobileone", "out": 32, "stride": 2}]}])
    assert m.kind == "aliasing" and "blurpool" in m.fix


def test_channels_not_a_multiple_of_8_once_per_written_block() -> None:
    ws = _warnings([{"repeat": 3, "blocks": [{"type": "dwsep", "out": 30}]}])
    (w,) = ws
    assert w.kind == "channels" and w.place == "stage 1, block 1" and w.fix == "use out 32"
    hidden = load_design({"name": "h", "input": {"size": 32},
                          "stem": [{"type": "blurpool"}, {"type": "conv", "out": 16}],
                          "head": {"type": "classifier", "hidden": 100}})
    (h,) = design_warnings(hidden, analyze(hidden))
    assert (h.kind, h.place, h.fix) == ("channels", "head", "use hidden 96")


def test_a_narrow_condenser_embedding() -> None:
    narrow = _warnings([{"blocks": [{"type": "attention_condenser"}]}],
                       stem=[{"type": "blurpool"}, {"type": "conv", "out": 4}])
    w = next(w for w in narrow if w.kind == "embedding")
    assert "4 channels wide" in w.message and "at least 8" in w.fix
    asked = next(w for w in _warnings([{"blocks": [{"type": "attention_condenser", "embed_ratio": 0.25}]}])
                 if w.kind == "embedding")
    assert "asks for a 4.0-channel embedding" in asked.message and asked.fix == "use embed_ratio ≥ 0.5"


def test_an_input_size_the_stride_chain_does_not_divide() -> None:
    ws = _warnings([{"blocks": [{"type": "blurpool"}, {"type": "dwsep", "out": 16}]},
                    {"blocks": [{"type": "blurpool"}, {"type": "dwsep", "out": 16}]}], size=36)
    w = ws[-1]
    assert w.kind == "divisibility" and "total stride 8" in w.message and "36 = 4·8 + 4" in w.message
    assert w.place == "stage 2, block 1" and "odd size 9" in w.message
    assert w.fix == "use an input size that is a multiple of 8, e.g. 32 or 40"


def test_the_presets_findings_are_stable() -> None:
    kinds = {name: _kinds(design_warnings(load_preset(name), analyze(load_preset(name))))
             for name in ("attendnext", "mobilenetv3_small")}
    assert kinds["attendnext"] == ["embedding"]  # 24 · 0.25 = 6 < 8 in the first DC-AC: a real finding
    assert set(kinds["mobilenetv3_small"]) == {"aliasing"}
