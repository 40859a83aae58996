"""Hostile specs (issue 10): every one ends as our one-line SpecError, fast and within a memory bound.

Fixed cases from a hostile-input review (``spec_fuzz.HOSTILE``), the bounds one by one at their
edges, and a Hypothesis fuzzer over generated specs and mutation chains of every preset: each
example must end as a valid analysis or one of our errors, within 10 s and a 3 GiB address-space cap.
"""

from __future__ import annotations

import copy
import re
import time
from datetime import timedelta
from typing import Any

import pytest
import torch.nn as nn
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blocks import get_block, list_blocks
from blocks.registry import _params_model_from_signature
from explorer import spec_yaml as spec_yaml_module
from explorer.analysis import analyze
from explorer.design import load_design, load_preset, retarget
from explorer.limits import MAX_DESIGN_MACS, MAX_DESIGN_VALUES, check_size
from explorer.presets import list_presets
from explorer.spec import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_MESSAGE_CHARS,
    SpecError,
    count_blocks,
    dump_spec,
    validate_spec,
)
from explorer.spec_yaml import parse_spec_text

from spec_fuzz import HOSTILE, check_case, check_mutation, memory_bound, mutation_chain, random_spec

BASE: dict[str, Any] = {
    "name": "tiny",
    "input": {"channels": 3, "size": 32},
    "num_classes": 10,
    "stem": [{"type": "conv", "out": 16, "stride": 2}],
    "stages": [{"name": "a", "blocks": [{"type": "dwsep", "out": 16}]}],
    "head": {"type": "classifier"},
}

FUZZ = settings(
    deadline=timedelta(seconds=10),  # per example
    derandomize=True,  # the same examples every run: the suite stays deterministic
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("label,source,words", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_files_are_refused_with_one_bounded_line(label: str, source: Any, words: str) -> None:
    start = time.perf_counter()
    with memory_bound(2 << 30):
        outcome = check_case(source)
    assert outcome.kind == "refused", f"{label} was accepted"
    assert words in outcome.message, f"{label}: {outcome.message[:300]!r}"
    assert time.perf_counter() - start < 5.0, f"{label} took {time.perf_counter() - start:.1f} s"


# ----------------------------------------------------------------------------- parsing bounds, at their edges


def _nested(levels: int) -> str:
    """A spec whose deepest value sits ``levels`` collections deep (the top mapping is level 1)."""
    return "name: x\ndescription: " + "[" * (levels - 1) + "]" * (levels - 1) + "\n"


def test_nesting_is_bounded_at_the_limit() -> None:
    assert parse_spec_text(_nested(MAX_DEPTH))["name"] == "x"
    with pytest.raises(SpecError, match=f"line 2: the spec nests deeper than {MAX_DEPTH} levels"):
        parse_spec_text(_nested(MAX_DEPTH + 1))


def test_integers_are_bounded_at_the_limit() -> None:
    assert parse_spec_text(f"n: {'9' * MAX_DIGITS}")["n"] == int("9" * MAX_DIGITS)
    assert parse_spec_text("n: -1_000")["n"] == -1000
    with pytest.raises(SpecError, match=f"has {MAX_DIGITS + 1} digits"):
        parse_spec_text(f"n: {'9' * (MAX_DIGITS + 1)}")
    for text in ("n: .nan", "n: -.inf", "n: 1.0e+999"):
        with pytest.raises(SpecError, match="is not a finite number"):
            parse_spec_text(text)


def test_aliases_and_merges_that_stay_small_still_work() -> None:
    text = (
        "block: &ir {type: ir, out: 16, kernel: 3}\n"
        "name: anchors\ninput: {size: 32}\nnum_classes: 10\n"
        "stem: [{type: conv, out: 16, stride: 2}]\n"
        "stages: [{blocks: [*ir, *ir, {<<: *ir, kernel: 5}]}]\n"
    )
    data = parse_spec_text(text)
    del data["block"]
    spec = load_design(data)
    assert [b.params["kernel"] for b in spec.stages[0].blocks] == [3, 3, 5]  # a merge's keys may be overridden
    many = "s: &s 1\nv: [" + ", ".join(["*s"] * MAX_ALIASES) + "]\n"
    assert len(parse_spec_text(many)["v"]) == MAX_ALIASES


@pytest.mark.parametrize("parser", ["libyaml", "pure Python"])
def test_both_yaml_parsers_read_alike_and_apply_the_bounds(parser: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PyYAML's wheels bring libyaml; a PyYAML built without it falls back to its pure-Python parser."""
    if parser == "pure Python":
        monkeypatch.setattr(spec_yaml_module, "_SpecLoader", spec_yaml_module._PySpecLoader)
    text = dump_spec(load_preset("mobilevit_xs"))
    assert parse_spec_text(text) == yaml.safe_load(text)
    with pytest.raises(SpecError, match="YAML error at line 1, column 1[0-9]"):  # the end of line 1, not line 2
        parse_spec_text("name: [unclosed")
    for _label, source, words in HOSTILE:
        if isinstance(source, str) and len(source) < 20_000:  # the pure-Python parser is slow on long texts
            with pytest.raises(SpecError, match=re.escape(words)):
                load_design(source)


def test_duplicate_keys_name_the_key_and_lines() -> None:
    with pytest.raises(SpecError, match=r"line 3: the key 'out' is given twice in one mapping \(first on line 2\)"):
        parse_spec_text("stem:\n- out: 16\n  out: 4096\n")
    with pytest.raises(SpecError, match="the key 'name' is given twice"):
        parse_spec_text('{"name": "a", "name": "a"}')
    assert parse_spec_text('{"out": 16, "Out": 4096}') == {"out": 16, "Out": 4096}


def test_messages_are_bounded() -> None:
    long = SpecError("x" * 100_000)
    assert len(str(long)) == MAX_MESSAGE_CHARS and str(long).endswith("…")
    many = SpecError([f"stage {i}, block 1: kernel 4 is even; use 1, 3, 5 or 7" for i in range(1000)])
    assert len(str(many)) <= MAX_MESSAGE_CHARS + 40
    assert many.errors[-1].startswith("… and ") and many.errors[-1].endswith(" more problems")
    kept = len(many.errors) - 1
    assert many.errors[-1] == f"… and {1000 - kept} more problems"
    assert SpecError(["a", "b"]).errors == ["a", "b"]


# ----------------------------------------------------------------------------- true is not a number


def _number_params(name: str) -> list[str]:
    props = get_block(name).json_schema()["properties"]

    def numeric(schema: dict[str, Any]) -> bool:
        if "anyOf" in schema:
            return any(numeric(s) for s in schema["anyOf"])
        return schema.get("type") in ("integer", "number")

    return [p for p, s in props.items() if numeric(s)]


def _with_block(block: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    if get_block(block["type"]).category == "head":
        data["head"] = block
    else:
        data["stages"][0]["blocks"] = [block]
    return data


@pytest.mark.parametrize("name", [e.name for e in list_blocks()])
def test_every_number_parameter_of_every_block_refuses_true(name: str) -> None:
    required = {p: 8 for p in get_block(name).json_schema().get("required", [])}
    params = _number_params(name)
    assert params, f"{name} has no number parameters to check"
    for param in params:
        for flag in (True, False):
            data = _with_block({"type": name, **required, param: flag})
            with pytest.raises(SpecError, match=f"{param} {str(flag).lower()} should be a (whole )?number"):
                validate_spec(data, get_block)


def test_text_parameters_of_a_block_are_bounded() -> None:
    class Labelled(nn.Module):
        def __init__(self, in_channels: int, label: str = "", width: int = 8) -> None:
            super().__init__()

    model, _ = _params_model_from_signature("labelled", Labelled)
    assert model(label="l" * 80, width=8).label == "l" * 80  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="at most 80 characters"):
        model(label="l" * 81)
    with pytest.raises(ValueError, match="valid integer|number"):
        model(width=True)


# ----------------------------------------------------------------------------- block counts


def test_blocks_in_parallel_columns_count_against_the_limit() -> None:
    group = {"type": "parallel", "branches": [[{"type": "se"}] * 4, [{"type": "se"}] * 4]}
    data = copy.deepcopy(BASE)
    data["stages"] = [{"repeat": 2, "blocks": [group, {"type": "se"}]}]
    assert count_blocks(data) == 1 + 2 * (8 + 1)
    assert count_blocks({"stages": "nonsense", "stem": 5}) == 0
    assert count_blocks({"stages": [{"repeat": True, "blocks": [1, 2, 3]}, "x"]}) == 3  # odd repeats count once


# ----------------------------------------------------------------------------- work limits


@pytest.mark.parametrize("name", list_presets())
def test_presets_load_within_the_work_limits_at_their_size_and_at_512(name: str) -> None:
    spec = load_preset(name)
    for design in (spec, retarget(spec, input_size=512)):
        rows = check_size(design)
        assert 0 < sum(r.macs for r in rows) <= MAX_DESIGN_MACS


def test_the_meta_device_count_agrees_with_the_analysis() -> None:
    """The analytic MACs of the size check and fvcore's count of the same (MobileOne-free) designs
    agree to a few percent: fvcore also counts norms and pooling, the meta count only products."""
    for name in ("mobilenetv3_small", "attendnext", "mobilevit_xs"):
        spec = load_preset(name)
        meta = sum(r.macs for r in check_size(spec))
        counted = analyze(spec)
        assert 0.9 <= meta / (counted.macs + counted.uncounted_macs) <= 1.05, name


def test_a_design_at_the_work_limits_still_analyses() -> None:
    """Just under the MAC bound: a 64→64 3×3 conv at 512² is 9.7 GMACs; two fit, three do not."""

    def design(convs: int) -> dict[str, Any]:
        data = copy.deepcopy(BASE)
        data["input"]["size"] = 512
        data["stem"] = [{"type": "conv", "out": 64, "kernel": 1}]
        data["stages"] = [{"blocks": [{"type": "conv", "out": 64, "kernel": 3}] * convs}]
        return data

    with pytest.raises(SpecError, match="stage 1, block 3: the design passes 20 GMACs here"):
        load_design(design(3))
    rows = check_size(load_design(design(2)))
    assert sum(r.macs for r in rows) <= MAX_DESIGN_MACS and MAX_DESIGN_VALUES > 0


# ----------------------------------------------------------------------------- the fuzzer


@pytest.mark.slow
@settings(FUZZ, max_examples=60)
@given(rng=st.randoms(use_true_random=False))
def test_generated_specs_end_as_an_analysis_or_our_error(rng: Any) -> None:
    with memory_bound():
        check_case(random_spec(rng))


@pytest.mark.slow
@pytest.mark.parametrize("preset", list_presets())
@settings(FUZZ, max_examples=3)
@given(rng=st.randoms(use_true_random=False))
def test_mutation_chains_of_every_preset_end_as_an_analysis_or_our_error(preset: str, rng: Any) -> None:
    with memory_bound():
        for step in mutation_chain(rng, preset, steps=3):
            check_mutation(step)
