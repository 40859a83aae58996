"""The fast unit count (meta device, ``explorer.unit_count``) equals fvcore's count on real tensors."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn as nn

from explorer.analysis import _count_meta, count_unit_reference
from explorer.design import load_preset
from explorer.mutate import random_mutation
from explorer.presets import list_presets
from explorer.spec import ArchitectureSpec, expand_units
from explorer.unit_count import UnsupportedOpError, count_on_meta


def _units(spec: ArchitectureSpec) -> list[tuple[str, str, tuple[int, ...]]]:
    """(place, config JSON, input shape) of every unit, shapes chained by the reference count."""
    shape: tuple[int, ...] = (1, spec.input.channels, *spec.input.hw)
    out = []
    for unit in expand_units(spec):
        config = unit.config.model_dump_json()
        out.append((unit.place, config, shape))
        shape = count_unit_reference(config, shape, spec.num_classes).out_shape
    return out


def _check(spec: ArchitectureSpec) -> int:
    seen = 0
    for place, config, shape in _units(spec):
        want = count_unit_reference(config, shape, spec.num_classes)
        params_train, params, out_shape, macs, attention, peak = _count_meta(config, shape, spec.num_classes)
        got = (params_train, params, out_shape, macs, attention, peak)
        assert got == (want.params_train, want.params, want.out_shape, want.macs, want.uncounted_macs,
                       want.peak_bytes), f"{spec.name}, {place}"
        seen += 1
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("preset", list_presets())
def test_meta_count_equals_fvcore_on_every_preset_unit(preset: str) -> None:
    assert _check(load_preset(preset)) > 5


@pytest.mark.slow
def test_meta_count_equals_fvcore_on_mutated_designs() -> None:
    rng = random.Random(7)
    spec = load_preset("attendnext")
    for _ in range(6):  # a walk of seeded random mutations: new kernels, widths, depths, block types
        spec = random_mutation(spec, rng).spec
        _check(spec)


def test_an_unknown_function_is_refused_not_counted_as_zero() -> None:
    class Einsum(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.einsum("nchw,nchw->nhw", x, x)

    with pytest.raises(UnsupportedOpError, match="einsum"):
        count_on_meta(Einsum(), (1, 2, 4, 4))


def test_in_place_activations_keep_identity_for_the_peak() -> None:
    block = nn.Sequential(nn.Conv2d(4, 8, 1), nn.ReLU(inplace=True), nn.Conv2d(8, 4, 1))
    out, macs, attention, peak = count_on_meta(block.to("meta"), (1, 4, 8, 8))
    assert out == (1, 4, 8, 8) and attention == 0
    assert macs == 2 * 4 * 8 * 64
    # the ReLU's input and output are one tensor: unit input (4) + conv output (8), not 4 + 8 + 8
    assert peak == 4 * (4 + 8 + 4) * 64  # the second conv: unit input + its input (8) + its output (4)
