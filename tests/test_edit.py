"""Pure spec edits: structure, and errors that name the place and the fix (block forms: test_forms.py)."""

from __future__ import annotations

import pytest

from explorer.analysis import analyze
from explorer.design import load_design, load_preset
from explorer.edit import (
    BlockRef,
    add_block,
    add_stage,
    block_refs,
    empty_spec,
    move_block,
    remove_block,
    remove_stage,
    replace_block_type,
    set_stage,
    unit_refs,
)
from explorer.limits import channels_before
from explorer.spec import ArchitectureSpec, SpecError, dump_spec, expand_units


@pytest.fixture(scope="module")
def small() -> ArchitectureSpec:
    return load_preset("mobilenetv3_small")


def test_block_ref_keys_round_trip() -> None:
    for ref in (BlockRef(0, 1), BlockRef(3, 2), BlockRef(-1, 1)):
        assert BlockRef.parse(ref.key) == ref
    assert BlockRef(2, 1).place == "stage 2, block 1" and BlockRef(0, 2).place == "stem, block 2"
    for bad in ("", "x", "1", "1:0", "-2:1"):
        with pytest.raises(SpecError, match="block address"):
            BlockRef.parse(bad)


def test_block_refs_and_unit_refs_cover_the_design(small: ArchitectureSpec) -> None:
    refs = [r for _label, r in block_refs(small)]
    written = len(small.stem) + sum(len(s.blocks) for s in small.stages) + 1
    assert len(refs) == written and refs[0] == BlockRef(0, 1) and refs[-1].is_head
    units = unit_refs(small)
    assert len(units) == len(expand_units(small))
    # stage 5 of MobileNetV3-S repeats its one block 3 times: three units, one written block
    assert units.count(BlockRef(5, 1)) == 3


def test_channels_before(small: ArchitectureSpec) -> None:
    assert channels_before(small, 0, 1) == 3  # the image
    assert channels_before(small, 2, 1) == 16  # after stage 1
    assert channels_before(small, 2, 3) == 24  # after stage 2's block 2
    assert channels_before(small, len(small.stages) + 1, 1) == 576  # what the head sees
    assert channels_before(small, 5, 2) == 96  # past the last written block of a repeated stage
    with pytest.raises(SpecError, match="stage 2 has 2 blocks; give a position from 1 to 3"):
        channels_before(small, 2, 4)


def test_add_block_keeps_the_width_and_validates(small: ArchitectureSpec) -> None:
    new = add_block(small, 2, 3, "attention_condenser")
    assert [b.type for b in new.stages[1].blocks] == ["ir", "ir", "attention_condenser"]
    new = add_block(small, 3, 2, "dwsep")
    block = new.stages[2].blocks[1]
    assert block.type == "dwsep" and block.params["out"] == 40 and block.params["stride"] == 1
    assert analyze(new).params > analyze(small).params
    assert small.stages[2].blocks[1].type == "ir"  # the input spec is untouched


def test_add_block_refuses_clearly(small: ArchitectureSpec) -> None:
    with pytest.raises(SpecError, match="insert at position 1 to 3"):
        add_block(small, 2, 9, "dwsep")
    with pytest.raises(SpecError, match="unknown block type 'nope'"):
        add_block(small, 2, 1, "nope")
    with pytest.raises(SpecError, match="head block"):
        add_block(small, 2, 1, "classifier")
    with pytest.raises(SpecError, match="no stage 42"):
        add_block(small, 42, 1, "dwsep")


def test_remove_and_move_blocks(small: ArchitectureSpec) -> None:
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


def test_stages(small: ArchitectureSpec) -> None:
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
    assert load_design(dump_spec(spec)) == spec


def test_replace_block_type_carries_shared_settings(small: ArchitectureSpec) -> None:
    new = replace_block_type(small, BlockRef(3, 2), "dwsep")
    block = new.stages[2].blocks[1]
    assert block.type == "dwsep" and block.params["out"] == 40 and block.params["kernel"] == 5
    assert block.params["act"] == "hswish" and block.params["se"] == 0.25
    with pytest.raises(SpecError, match="use a head block"):
        replace_block_type(small, BlockRef(-1, 1), "dwsep")
    with pytest.raises(SpecError, match="use a body block"):
        replace_block_type(small, BlockRef(2, 1), "classifier")
