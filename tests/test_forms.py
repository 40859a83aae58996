"""The block form: fields read from the registry's schema, raw browser values parsed back, errors per field."""

from __future__ import annotations

import pytest

from blocks import list_blocks
from explorer.analysis import analyze
from explorer.design import load_preset
from explorer.edit import BlockRef, palette, set_block_params
from explorer.spec import ArchitectureSpec, SpecError
from explorer.ui.forms import FORM_SLOTS, block_form, form_raw, form_values, parse_form, slot_keys


@pytest.fixture(scope="module")
def small() -> ArchitectureSpec:
    return load_preset("mobilenetv3_small")


def test_every_registered_block_has_a_form() -> None:
    for entry in list_blocks():
        fields = block_form(entry.name)
        assert [f.name for f in fields] == entry.param_names
        for f in fields:
            assert f.kind in ("int", "float", "bool", "choice", "optional_int")
            if f.kind == "choice":
                assert f.default in f.choices
    assert {name for _label, name in palette()} == {e.name for e in list_blocks() if e.category != "head"}


def test_form_fields_follow_the_schema() -> None:
    fields = {f.name: f for f in block_form("ir")}
    assert fields["out"].required and fields["out"].kind == "int"
    assert fields["out"].minimum == 1 and fields["out"].maximum == 4096
    assert fields["expand"].kind == "float" and fields["expand"].default == 4.0
    assert "default 4.0" in fields["expand"].info
    assert fields["act"].kind == "choice" and "hswish" in fields["act"].choices
    assert fields["residual"].kind == "bool"
    condenser = {f.name: f for f in block_form("attention_condenser")}
    assert condenser["condense_steps"].choices == (1, 2)
    assert condenser["embed_ratio"].exclusive_minimum == 0 and "> 0 to 1" in condenser["embed_ratio"].info
    vit = {f.name: f for f in block_form("mobilevit")}
    assert vit["out"].kind == "optional_int" and vit["out"].parse("") is None


def test_form_round_trip_and_edit(small: ArchitectureSpec) -> None:
    block_type, fields, values = form_values(small, BlockRef(2, 1))
    assert block_type == "ir" and values[:4] == [24, 3, 2, 4.5]
    # what a browser form sends back: numbers as floats, choices as text, switches as bools
    raw = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in values]
    raw[fields.index(next(f for f in fields if f.name == "kernel"))] = 5.0
    params = parse_form(fields, raw)
    assert params["kernel"] == 5 and isinstance(params["kernel"], int) and params["out"] == 24
    new = set_block_params(small, BlockRef(2, 1), params)
    assert new.stages[1].blocks[0].params["kernel"] == 5
    assert analyze(new).params > analyze(small).params


def test_form_errors_name_every_bad_field(small: ArchitectureSpec) -> None:
    _t, fields, values = form_values(small, BlockRef(2, 1))
    raw = list(values)
    names = [f.name for f in fields]
    raw[names.index("out")] = None
    raw[names.index("kernel")] = 4.5
    raw[names.index("act")] = "sparkle"
    raw[names.index("expand")] = "lots"
    with pytest.raises(SpecError) as err:
        parse_form(fields, raw)
    assert err.value.errors == [
        "out is missing; enter a whole number (1 to 4096)",
        "kernel 4.5 should be a whole number",
        "expand 'lots' should be a number",
        "act 'sparkle' is not allowed; use one of relu, relu6, hswish, swish, gelu, none",
    ]


def test_impossible_parameters_are_refused_by_the_validator(small: ArchitectureSpec) -> None:
    _t, fields, values = form_values(small, BlockRef(2, 1))
    params = parse_form(fields, values)
    with pytest.raises(SpecError) as err:
        set_block_params(small, BlockRef(2, 1), {**params, "kernel": 4})
    assert err.value.errors == ["stage 2, block 1: kernel 4 is even; use 1, 3, 5, 7, 9 or 11"]
    with pytest.raises(SpecError, match="stage 2, block 1: out 5000 is too large; use at most 4096"):
        set_block_params(small, BlockRef(2, 1), {**params, "out": 5000})


def test_slots_hold_the_largest_form_and_pick_each_fields_component() -> None:
    assert max(len(block_form(e.name)) for e in list_blocks()) == FORM_SLOTS
    assert slot_keys(2) == ("slot2_number", "slot2_choice", "slot2_check")
    by_name = {f.name: f for f in block_form("ir")}
    fields = [by_name["out"], by_name["act"], by_name["residual"]]  # a number, a choice, a switch
    assert [f.kind for f in fields] == ["int", "choice", "bool"]
    # three values per slot as the page sends them (number box, choice box, switch); slot i shows field i
    slot_values = [24.0, "relu", False, None, "hswish", False, None, "relu", True]
    assert form_raw(fields, slot_values) == [24.0, "hswish", True]
