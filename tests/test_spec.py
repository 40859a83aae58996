"""The spec: YAML/JSON round trips, and every kind of user mistake gives one clear located message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import NoReturn

import pytest

from blocks import get_block
from explorer.design import load_design, load_preset
from explorer.presets import list_presets
from explorer.spec import SpecError, UnitAddress, dump_spec, expand_units, validate_spec
from explorer.spec_yaml import parse_spec_text

BASE = {
    "name": "tiny",
    "input": {"channels": 3, "size": 64},
    "num_classes": 10,
    "stem": [{"type": "conv", "out": 16, "kernel": 3, "stride": 2}],
    "stages": [{"name": "a", "blocks": [{"type": "dwsep", "out": 16}, {"type": "ir", "out": 24, "stride": 2}]}],
    "head": {"type": "classifier"},
}


def with_change(path: str, value: object) -> dict:
    """BASE with one value replaced; path like 'stages.0.blocks.1.kernel' (value None deletes)."""
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    key = int(last) if isinstance(node, list) else last
    if value is None:
        del node[key]
    else:
        node[key] = value
    return data


@pytest.mark.parametrize("name", list_presets())
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_presets_round_trip_losslessly(name: str, fmt: str) -> None:
    spec = load_preset(name)
    text = dump_spec(spec, fmt)
    again = load_design(text)
    assert again == spec
    assert dump_spec(again, fmt) == text


def test_round_trip_keeps_parallel_columns_and_rectangular_inputs(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["input"]["size"] = [48, 80]
    data["stages"][0]["blocks"].append(
        {"type": "parallel", "merge": "concat", "branches": [[{"type": "conv", "out": 8}], [{"type": "dwsep", "out": 16}]]}
    )
    spec = load_design(data)
    for suffix, fmt in ((".yaml", "yaml"), (".json", "json")):
        path = tmp_path / f"design{suffix}"
        path.write_text(dump_spec(spec, fmt))
        assert load_design(path) == spec
    assert spec.input.hw == (48, 80)


def test_defaults_are_filled_in() -> None:
    spec = load_design(BASE)
    assert spec.stages[0].blocks[0].params["kernel"] == 3
    assert spec.head.params["dropout"] == 0.2


def test_repeats_unroll_with_stride_one_copies() -> None:
    data = with_change("stages.0.repeat", 3)
    units = expand_units(load_design(data))
    names = [u.name for u in units]
    assert names == ["stem.b1", "s1.b1", "s1.b2", "s1.b3", "s1.b4", "s1.b5", "s1.b6", "head"]
    strides = [u.config.params.get("stride") for u in units[1:-1]]
    assert strides == [1, 2, 1, 1, 1, 1]
    assert units[3].place == "stage 1, block 1 (repeat 2)"


MALFORMED: list[tuple[str, object, str]] = [
    ("empty text", "", "the spec is empty"),
    ("not a mapping", "[1, 2]", "must be a mapping"),
    ("broken YAML", "name: x\nstages: [\n  {type: conv\n", "YAML error at line"),
    ("python tag", "!!python/object/apply:os.system ['true']", "YAML error"),
    ("unknown top-level key", with_change("stagez", []), "unknown parameter 'stagez'"),
    ("unknown block type", with_change("stages.0.blocks.0.type", "convv"), "stage 1, block 1: unknown block type 'convv'"),
    ("even kernel", with_change("stages.0.blocks.1.kernel", 4), "stage 1, block 2: kernel 4 is even; use 1, 3, 5, 7, 9 or 11"),
    ("kernel too large", with_change("stages.0.blocks.0.kernel", 13), "stage 1, block 1: kernel 13 is too large; use at most 11"),
    ("kernel not a number", with_change("stem.0.kernel", "three"), 'stem, block 1: kernel "three" should be a whole number'),
    ("zero width", with_change("stages.0.blocks.0.out", 0), "stage 1, block 1: out 0 is too small; use at least 1"),
    ("huge width", with_change("stages.0.blocks.0.out", 5000), "out 5000 is too large; use at most 4096"),
    ("missing width", with_change("stages.0.blocks.1.out", None), "stage 1, block 2: out is missing"),
    ("stride 3", with_change("stem.0.stride", 3), "stem, block 1: stride 3 is too large; use at most 2"),
    ("unknown activation", with_change("stages.0.blocks.0.act", "tanh"), "act \"tanh\" is not allowed; use one of"),
    ("misspelt parameter", with_change("stages.0.blocks.0.kernal", 3), "unknown parameter 'kernal'; known: out, kernel"),
    ("expansion below 1", with_change("stages.0.blocks.1.expand", 0.5), "expand 0.5 is too small; use at least 1.0"),
    ("se above 1", with_change("stages.0.blocks.1.se", 1.5), "se 1.5 is too large; use at most 1.0"),
    ("repeat 0", with_change("stages.0.repeat", 0), "stage 1: repeat 0 is too small; use at least 1"),
    ("repeat 100", with_change("stages.0.repeat", 100), "stage 1: repeat 100 is too large; use at most 64"),
    ("empty stage", with_change("stages.0.blocks", []), "stage 1: blocks has 0 item(s); give at least 1"),
    ("stages not a list", with_change("stages", 5), "stages 5 should be a list"),
    ("tiny input", with_change("input.size", 4), "input size 4 is out of range; use 8 to 1024"),
    ("huge input", with_change("input.size", 2048), "input size 2048 is out of range"),
    ("three-sided input", with_change("input.size", [224, 224, 3]), "should be one whole number or [height, width]"),
    ("zero channels", with_change("input.channels", 0), "input: channels 0 is too small"),
    ("zero classes", with_change("num_classes", 0), "num_classes 0 is too small"),
    ("conv as head", with_change("head", {"type": "conv", "out": 8}), "head: conv is not a head block; use type: classifier"),
    ("head in a stage", with_change("stages.0.blocks.0", {"type": "classifier"}), "stage 1, block 1: classifier is a head block"),
    ("block without type", with_change("stages.0.blocks.0", {"out": 8}), "stage 1, block 1: type is missing"),
    ("groups that do not divide", with_change("stem.0.groups", 5), "stem, block 1: groups 5 must divide both"),
    ("condense steps 3", with_change("stages.0.blocks.0", {"type": "attention_condenser", "condense_steps": 3}),
     "condense_steps 3 is not allowed; use one of 1 or 2"),
    ("heads not dividing dim", with_change("stages.0.blocks.0", {"type": "mobilevit", "dim": 30, "heads": 4}),
     "stage 1, block 1: dim 30 is not divisible by heads 4"),
    ("single parallel column",
     with_change("stages.0.blocks.0", {"type": "parallel", "branches": [[{"type": "conv", "out": 8}]]}),
     "stage 1, block 1: branches has 1 item(s); give at least 2"),
    ("parallel add of unequal widths",
     with_change("stages.0.blocks.0", {"type": "parallel", "merge": "add",
                                        "branches": [[{"type": "conv", "out": 8}], [{"type": "conv", "out": 16}]]}),
     "stage 1, block 1: columns end with 8, 16 channels; 'add' needs equal widths"),
    ("parallel columns at different strides",
     with_change("stages.0.blocks.0", {"type": "parallel", "merge": "concat",
                                        "branches": [[{"type": "conv", "out": 8}], [{"type": "conv", "out": 8, "stride": 2}]]}),
     "stage 1, block 1: columns end at different resolutions"),
    ("bad block inside a column",
     with_change("stages.0.blocks.0", {"type": "parallel",
                                        "branches": [[{"type": "conv", "out": 8, "kernel": 2}], [{"type": "conv", "out": 8}]]}),
     "stage 1, block 1, branch 1, block 1: kernel 2 is even"),
    ("unknown merge", with_change("stages.0.blocks.0", {"type": "parallel", "merge": "mul",
                                                         "branches": [[{"type": "conv", "out": 8}], [{"type": "conv", "out": 8}]]}),
     "stage 1, block 1: merge \"mul\" is not allowed"),
    ("out of pixels", with_change("stages.0", {"repeat": 1, "blocks": [{"type": "blurpool"}] * 7}), "too small for this block"),
    ("too many parameters", with_change("stages.0", {"repeat": 8, "blocks": [{"type": "conv", "out": 4096}]}),
     "passes 50 M parameters"),
    ("too many blocks", with_change("stages.0", {"repeat": 64, "blocks": [{"type": "se"}] * 9}), "the limit is 512"),
    ("activation too large",
     {**with_change("input.size", 1024), "stem": [{"type": "conv", "out": 4096, "kernel": 1}]}, "M values (limit 134 M)"),
]


@pytest.mark.parametrize("label,source,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_specs_give_clear_located_errors(label: str, source: object, message: str) -> None:
    with pytest.raises(SpecError) as info:
        if isinstance(source, str):
            load_design(parse_spec_text(source))
        else:
            load_design(source)  # type: ignore[arg-type]
    text = str(info.value)
    assert message in text, f"{label}: {text!r}"
    assert "Traceback" not in text and "\n" not in text


def test_all_problems_are_reported_at_once() -> None:
    data = with_change("stages.0.blocks.1.kernel", 4)
    data["stem"][0]["act"] = "tanh"
    with pytest.raises(SpecError) as info:
        load_design(data)
    assert len(info.value.errors) == 2


def test_missing_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no spec file at"):
        load_design(tmp_path / "nope.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(SpecError, match="larger than 1024 KiB"):
        load_design(big)


def test_json_text_is_accepted() -> None:
    assert load_design(json.dumps(BASE)) == load_design(BASE)


def test_units_carry_a_structured_address() -> None:
    data = with_change("stages.0.repeat", 2)
    units = expand_units(load_design(data))
    assert [u.address for u in units] == [
        UnitAddress(0, 1), UnitAddress(1, 1), UnitAddress(1, 2),
        UnitAddress(1, 1, repeat=2), UnitAddress(1, 2, repeat=2), UnitAddress.head(),
    ]
    assert units[-1].address.is_head and units[0].address.is_stem and not units[1].address.is_head
    paths = ["stem.b1", "stages.0.b1", "stages.0.b2", "stages.0.b3", "stages.0.b4", "head"]
    assert [u.module_path for u in units] == paths  # where the built modules live (state-dict prefixes)
    assert UnitAddress(2, 1, branch=2).place == "stage 2, block 1, branch 2"


def test_the_pure_validator_checks_blocks_against_the_registry_it_is_given() -> None:
    spec = validate_spec(BASE, get_block)  # no size check: that needs the builder
    assert spec.stages[0].blocks[0].params["kernel"] == 3
    with pytest.raises(SpecError, match="stage 1, block 2: kernel 4 is even"):
        validate_spec(with_change("stages.0.blocks.1.kernel", 4), get_block)

    def no_blocks(name: str) -> NoReturn:  # a registry that knows nothing
        raise KeyError(f"unknown block type {name!r}; known types: none")

    with pytest.raises(SpecError, match="stem, block 1: unknown block type 'conv'"):
        validate_spec(BASE, no_blocks)
