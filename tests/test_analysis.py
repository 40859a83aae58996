"""Analysis: per-block rows, memory definitions, input-size overrides and the instant (cached) recount."""

from __future__ import annotations

from itertools import pairwise

import pytest
import torch

from explorer import analysis
from explorer.analysis import analyze, clear_cache, fvcore_counter
from explorer.build import build_model, reparameterize
from explorer.design import load_design, load_preset, retarget
from explorer.mutate import apply_mutation
from explorer.spec import SpecError, UnitAddress, expand_units


def test_rows_chain_shapes_and_sum_to_totals() -> None:
    a = analyze(load_preset("attendnext"))
    assert a.blocks[0].in_shape == (1, 3, 224, 224)
    for prev, row in pairwise(a.blocks):
        assert row.in_shape == prev.out_shape
    assert a.params == sum(b.params for b in a.blocks)
    assert a.macs == sum(b.macs for b in a.blocks)
    assert a.size_fp32_bytes == 4 * a.params and a.size_int8_bytes == a.params
    assert a.blocks[-1].out_shape == (1, 1000)


def test_peak_activation_is_at_least_every_input_plus_output() -> None:
    a = analyze(load_preset("mobilenetv3_small"))
    for b in a.blocks:
        numel_in = 1
        for d in b.in_shape:
            numel_in *= d
        assert b.peak_bytes >= 4 * numel_in + b.activation_bytes
    assert a.peak_activation_bytes == max(b.peak_bytes for b in a.blocks)
    # the first inverted residual expands 16 -> 72 channels at 56x56; its peak is the batch norm
    # after the expansion: BN input (72) + BN output (72) + the held block input (16), fp32
    first_ir = next(b for b in a.blocks if b.type == "ir")
    assert first_ir.peak_bytes == 4 * (72 + 72 + 16) * 56 * 56


def test_input_size_override_rescales_macs_not_params() -> None:
    spec = load_preset("mobilenetv3_small")
    small, large = analyze(retarget(spec, input_size=112)), analyze(spec)
    assert small.params == large.params
    assert small.input_shape == (1, 3, 112, 112)
    assert 0.2 < small.macs / large.macs < 0.3  # about a quarter of the pixels
    with pytest.raises(SpecError, match="out of range"):
        analyze(retarget(spec, input_size=4))


def test_one_block_edit_recounts_only_what_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_preset("attendnext")
    analyze(spec)
    calls: list[str] = []
    original = analysis._count_unit_cached.__wrapped__

    def counting(config_json: str, in_shape: tuple[int, ...], num_classes: int):  # noqa: ANN202
        calls.append(config_json)
        return original(config_json, in_shape, num_classes)

    clear_cache()
    analyze(spec)  # refill the cache through the real function
    monkeypatch.setattr(analysis, "_count_unit_cached", analysis.lru_cache(maxsize=8192)(counting))
    analyze(spec)  # fill the patched cache once
    calls.clear()
    edited = apply_mutation(spec, "kernel_up", 4, 3)
    fresh = analyze(edited)
    assert len(calls) == 1, "only the edited block is counted again"
    model = reparameterize(build_model(edited))
    counter = fvcore_counter(model, torch.zeros(1, 3, 224, 224))
    assert fresh.macs + fresh.uncounted_macs == counter.total()


def test_width_edit_recounts_the_edited_block_and_its_successor(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_preset("attendnext")
    calls: list[str] = []
    original = analysis._count_unit_cached.__wrapped__

    def counting(config_json: str, in_shape: tuple[int, ...], num_classes: int):  # noqa: ANN202
        calls.append(config_json)
        return original(config_json, in_shape, num_classes)

    monkeypatch.setattr(analysis, "_count_unit_cached", analysis.lru_cache(maxsize=8192)(counting))
    analyze(spec)
    calls.clear()
    data = spec.to_dict()
    data["stages"][3]["blocks"][2]["out"] = 120  # 112 -> 120: this block and the next one change
    analyze(load_design(data))
    assert len(calls) == 2


def test_summary_is_the_cli_json_contract() -> None:
    s = analyze(load_preset("mobilenetv3_small")).summary()
    assert {"name", "params", "macs", "peak_activation_bytes", "blocks"} <= set(s)
    assert set(s["blocks"][0]) == {"name", "type", "out_shape", "params", "macs",  # + traffic (issue 12)
                                   "bytes_read", "bytes_written", "bytes_read_int8", "bytes_written_int8"}


def test_progress_is_reported_while_counting_and_rows_carry_addresses() -> None:
    spec = load_preset("mobilenetv3_small")
    seen: list[tuple[float, str]] = []
    a = analyze(spec, progress=lambda fraction, text: seen.append((fraction, text)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and seen[-1] == (1.0, "done")
    assert 10 <= len(seen) - 1 <= len(a.blocks) and seen[0][1] == "counting stem, block 1"
    assert [row.address for row in a.blocks] == [u.address for u in expand_units(spec)]
    assert a.blocks[-1].address == UnitAddress.head()
