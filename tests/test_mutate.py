"""Mutations keep designs valid, do what their names say, and refuse clearly where they do not apply."""

from __future__ import annotations

import random

import pytest

from explorer.analysis import analyze
from explorer.design import load_design, load_preset
from explorer.mutate import MUTATIONS, apply_mutation, random_architectures, random_mutation
from explorer.spec import ArchitectureSpec, SpecError


@pytest.fixture(scope="module")
def mnv3() -> ArchitectureSpec:
    return load_preset("mobilenetv3_large")


def test_stage_mutations(mnv3: ArchitectureSpec) -> None:
    wider = apply_mutation(mnv3, "wider", 4)
    assert [b.params["out"] for b in wider.stages[3].blocks] == [104] * 4
    narrower = apply_mutation(mnv3, "narrower", 4)
    assert [b.params["out"] for b in narrower.stages[3].blocks] == [64] * 4
    assert apply_mutation(mnv3, "deeper", 3).stages[2].repeat == 4
    assert apply_mutation(mnv3, "shallower", 3).stages[2].repeat == 2
    assert analyze(wider).params > analyze(mnv3).params > analyze(narrower).params


def test_deeper_adds_one_block_not_a_stage() -> None:
    """Deeper on AttendNeXt's last stage adds one 200-channel IR, not the 896-channel conv (3.98 M -> 26 M)."""
    spec = load_preset("attendnext")
    deeper = apply_mutation(spec, "deeper", 5)
    before, after = spec.stages[4].blocks, deeper.stages[4].blocks
    assert len(after) == len(before) + 1 and deeper.stages[4].repeat == 1
    assert after[4] == after[3] and after[3].params["out"] == 200 and after[-1].params["out"] == 896
    grown = analyze(deeper).params - analyze(spec).params
    assert 0 < grown < 1_000_000  # one block, not a stage's copy
    selected = apply_mutation(spec, "deeper", 2, 2)  # the selected block: a stride-1 copy right after it
    assert [b.type for b in selected.stages[1].blocks] == ["blurpool", "ir", "ir", "attention_condenser", "dwsep"]
    assert selected.stages[1].blocks[2].params["stride"] == 1
    assert apply_mutation(deeper, "shallower", 5) == spec  # shallower takes the same block away


def test_deeper_and_shallower_on_repeated_stages(mnv3: ArchitectureSpec) -> None:
    """A repeated stage of several blocks is written out, so that exactly one block comes or goes."""
    data = mnv3.to_dict()
    data["stages"][1]["repeat"] = 2  # s2-56: an IR at stride 2 and one at stride 1, twice
    spec, stage = load_design(data), 2
    st = spec.stages[stage - 1]
    units = st.repeat * len(st.blocks)
    deeper = apply_mutation(spec, "deeper", stage).stages[stage - 1]
    shallower = apply_mutation(spec, "shallower", stage).stages[stage - 1]
    assert deeper.repeat == shallower.repeat == 1
    assert len(deeper.blocks) == units + 1 and len(shallower.blocks) == units - 1
    assert all(b.params.get("stride", 1) == 1 for b in deeper.blocks[len(st.blocks):])


def test_block_mutations(mnv3: ArchitectureSpec) -> None:
    assert apply_mutation(mnv3, "kernel_up", 2, 1).stages[1].blocks[0].params["kernel"] == 5
    assert apply_mutation(mnv3, "kernel_down", 3, 1).stages[2].blocks[0].params["kernel"] == 3
    assert apply_mutation(mnv3, "expand_up", 2, 1).stages[1].blocks[0].params["expand"] == 5.0
    assert apply_mutation(mnv3, "expand_down", 2, 1).stages[1].blocks[0].params["expand"] == 3.0


def test_swap_to_dcac_and_back(mnv3: ArchitectureSpec) -> None:
    swapped = apply_mutation(mnv3, "swap_condenser", 1, 1)
    block = swapped.stages[0].blocks[0]
    assert block.type == "attention_condenser" and block.params["condense_steps"] == 2
    classic = apply_mutation(swapped, "condense_steps", 1, 1)
    assert classic.stages[0].blocks[0].params["condense_steps"] == 1
    back = apply_mutation(classic, "swap_condenser", 1, 1)
    assert back.stages[0].blocks[0].type == "dwsep" and back.stages[0].blocks[0].params["out"] == 16


@pytest.mark.parametrize(
    "name,stage,block,message",
    [
        ("shallower", 1, None, "stage 1 has only one block"),
        ("shallower", 2, 1, "it changes the shape"),
        ("deeper", 2, 9, "there is no block 9"),
        ("kernel_up", 4, 5, "there is no block 5"),
        ("expand_up", 1, 1, "only inverted residuals"),
        ("swap_condenser", 2, 1, "only a stride-1 unit that keeps its width"),
        ("condense_steps", 2, 1, "not an attention condenser"),
        ("kernel_down", 1, 1, "kernel 3 is already the smallest"),
        ("kernel_up", 9, 1, "there is no stage 9"),
        ("twist", 1, 1, "unknown mutation 'twist'"),
        ("kernel_up", 1, None, "needs a block number"),
    ],
)
def test_mutations_refuse_with_a_reason(
    mnv3: ArchitectureSpec, name: str, stage: int, block: int | None, message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        apply_mutation(mnv3, name, stage, block)


def test_kernel_mutation_reaches_7_then_stops(mnv3: ArchitectureSpec) -> None:
    spec = apply_mutation(apply_mutation(mnv3, "kernel_up", 2, 1), "kernel_up", 2, 1)
    assert spec.stages[1].blocks[0].params["kernel"] == 7
    with pytest.raises(SpecError, match="already the largest"):
        apply_mutation(spec, "kernel_up", 2, 1)


def test_random_mutations_are_valid_and_reproducible() -> None:
    spec = load_preset("attendnext")
    a, b = random.Random(3), random.Random(3)
    for _ in range(5):
        one, two = random_mutation(spec, a), random_mutation(spec, b)
        assert one.spec == two.spec and one.description == two.description
        assert one.description.split(" at ")[0] in {m.label for m in MUTATIONS.values()}
        # the result says where it applied: the same mutation there gives the same design
        assert one.name in MUTATIONS and 1 <= one.stage <= len(spec.stages)
        assert (one.block is None) == (MUTATIONS[one.name].scope == "stage")
        assert apply_mutation(spec, one.name, one.stage, one.block) == one.spec
        spec = one.spec


def test_random_architectures_are_distinct_valid_and_seeded() -> None:
    designs = random_architectures(8, seed=5, input_size=64)
    assert len(designs) == 8
    assert len({d.model_dump_json(exclude={"name"}) for d in designs}) == 8
    assert all(d.input.hw == (64, 64) for d in designs)
    assert [d.name for d in random_architectures(8, seed=5, input_size=64)] == [d.name for d in designs]
