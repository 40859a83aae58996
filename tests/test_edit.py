"""Pure spec edits: structure, block forms, and errors that name the place and the fix."""

from __future__ import annotations

import pytest

from blocks import list_blocks
from explorer.analysis import analyze
from explorer.edit import (
    BlockRef,
    add_block,
    add_stage,
    block_form,
    block_refs,
    channels_before,
    empty_spec,
    form_values,
    move_block,
    palette,
    parse_form,
    remove_block,
    remove_stage,
    replace_block_type,
    set_block_params,
    set_stage,
    unit_refs,
)
from explorer.presets import load_preset
from explorer.spec import SpecError, dump_spec, expand_units, load_spec


@pytest.fixture(scope="module")
def small():
    return load_preset("mobilenetv3_small")


def test_block_ref_keys_round_trip() -> None:
    for ref in (BlockRef(0, 1), BlockRef(3, 2), BlockRef(-1, 1)):
        assert BlockRef.parse(ref.key) == ref
    assert BlockRef(2, 1).place == "stage 2, block 1" and BlockRef(0, 2).place == "stem, block 2"
    for bad in ("", "x", "1", "1:0", "-2:1"):
        with pytest.raises(SpecError, match="block address"):
            BlockRef.parse(bad)


def test_block_refs_and_unit_refs_cover_the_design(small) -> None:
    refs = [r for _label, r in block_refs(small)]
    written = len(small.stem) + sum(len(s.blocks) for s in small.stages) + 1
    assert len(refs) == written and refs[0] == BlockRef(0, 1) and refs[-1].is_head
    units = unit_refs(small)
    assert len(units) == len(expand_units(small))
    # stage 5 of MobileNetV3-S repeats its one block 3 times: three units, one written block
    assert units.count(BlockRef(5, 1)) == 3


def test_channels_before(small) -> None:
    assert channels_before(small, 0, 1) == 3  # the image
    assert channels_before(small, 2, 1) == 16  # after stage 1
    assert channels_before(small, 2, 3) == 24  # after stage 2's block 2
    assert channels_before(small, len(small.stages) + 1, 1) == 576  # what the head sees


def test_add_block_keeps_the_width_and_validates(small) -> None:
    new = add_block(small, 2, 3, "attention_condenser")
    assert [b.type for b in new.stages[1].blocks] == ["ir", "ir", "attention_condenser"]
    new = add_block(small, 3, 2, "dwsep")
    block = new.stages[2].blocks[1]
    assert block.type == "dwsep" and block.params["out"] == 40 and block.params["stride"] == 1
    assert analyze(new).params > analyze(small).params
    assert small.stages[2].blocks[1].type == "ir"  # the input spec is untouched


def test_add_block_refuses_clearly(small) -> None:
    with pytest.raises(SpecError, match="insert at position 1 to 3"):
        add_block(small, 2, 9, "dwsep")
    with pytest.raises(SpecError, match="unknown block type 'nope'"):
        add_block(small, 2, 1, "nope")
    with pytest.raises(SpecError, match="head block"):
        add_block(small, 2, 1, "classifier")
    with pytest.raises(SpecError, match="no stage 42"):
        add_block(small, 42, 1, "dwsep")


def test_remove_and_move_blocks(small) -> None:
    removed = remove_block(small, BlockRef(3, 2))
    assert len(removed.stages[2].blocks) == 2
    with pytest.raises(SpecError, match="only block of stage 1; remove the stage instead"):
        remove_block(small, BlockRef(1, 1))
    with pytest.raises(SpecError, match="head cannot be removed"):
        remove_block(small, BlockRef(-1, 1))
    moved, ref = move_block(small, BlockRef(2, 1), +1)
    assert ref == BlockRef(2, 2)
    assert [b.params["stride"] for b in moved.stages[1].blocks] == [1, 2]
    with pytest.raises(SpecError, match="already first"):
        move_block(small, BlockRef(2, 1), -1)
    with pytest.raises(SpecError, match="already last"):
        move_block(small, BlockRef(2, 2), +1)


def test_stages(small) -> None:
    added = add_stage(small, 3, "ir")
    assert len(added.stages) == len(small.stages) + 1
    assert added.stages[2].blocks[0].params["out"] == 24 and added.stages[2].name == "stage-3"
    assert len(remove_stage(small, 1).stages) == len(small.stages) - 1
    renamed = set_stage(small, 4, name="mid", repeat=3.0)
    assert renamed.stages[3].name == "mid" and renamed.stages[3].repeat == 3
    with pytest.raises(SpecError, match="repeat 2.5 should be a whole number"):
        set_stage(small, 4, repeat=2.5)
    with pytest.raises(SpecError, match="stage 4: repeat 0 is too small"):
        set_stage(small, 4, repeat=0)
    with pytest.raises(SpecError, match="no stage 9"):
        remove_stage(small, 9)


def test_empty_spec_grows_into_a_network() -> None:
    spec = empty_spec()
    assert spec.stages == [] and analyze(spec).params > 0
    spec = add_stage(spec, 1, "ir")
    spec = add_block(spec, 1, 2, "attention_condenser")
    assert [b.type for b in spec.stages[0].blocks] == ["ir", "attention_condenser"]
    assert load_spec(dump_spec(spec)) == spec


def test_replace_block_type_carries_shared_settings(small) -> None:
    new = replace_block_type(small, BlockRef(3, 2), "dwsep")
    block = new.stages[2].blocks[1]
    assert block.type == "dwsep" and block.params["out"] == 40 and block.params["kernel"] == 5
    assert block.params["act"] == "hswish" and block.params["se"] == 0.25
    with pytest.raises(SpecError, match="use a head block"):
        replace_block_type(small, BlockRef(-1, 1), "dwsep")
    with pytest.raises(SpecError, match="use a body block"):
        replace_block_type(small, BlockRef(2, 1), "classifier")


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
    assert fields["expand"].kind == "float" and fields["expand"].default == 4.0 and "default 4.0" in fields["expand"].info
    assert fields["act"].kind == "choice" and "hswish" in fields["act"].choices
    assert fields["residual"].kind == "bool"
    condenser = {f.name: f for f in block_form("attention_condenser")}
    assert condenser["condense_steps"].choices == (1, 2)
    assert condenser["embed_ratio"].exclusive_minimum == 0 and "> 0 to 1" in condenser["embed_ratio"].info
    vit = {f.name: f for f in block_form("mobilevit")}
    assert vit["out"].kind == "optional_int" and vit["out"].parse("") is None


def test_form_round_trip_and_edit(small) -> None:
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


def test_form_errors_name_every_bad_field(small) -> None:
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


def test_impossible_parameters_are_refused_by_the_validator(small) -> None:
    _t, fields, values = form_values(small, BlockRef(2, 1))
    params = parse_form(fields, values)
    with pytest.raises(SpecError) as err:
        set_block_params(small, BlockRef(2, 1), {**params, "kernel": 4})
    assert err.value.errors == ["stage 2, block 1: kernel 4 is even; use 1, 3, 5 or 7"]
    with pytest.raises(SpecError, match="stage 2, block 1: out 5000 is too large; use at most 4096"):
        set_block_params(small, BlockRef(2, 1), {**params, "out": 5000})
