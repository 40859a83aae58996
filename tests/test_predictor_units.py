"""Predicted latency as a sum of per-unit terms (each unit exported on its own, cached) equals the
whole-network prediction: what lets a search predict a child by exporting only its changed units."""

from __future__ import annotations

import pytest

from explorer.design import load_preset
from explorer.latency.predictor import predict, predict_by_units, unit_layers
from explorer.latency.profiles import load_profile
from explorer.mutate import apply_mutation
from explorer.presets import list_presets


@pytest.mark.slow
@pytest.mark.parametrize("preset", list_presets())
def test_per_unit_prediction_equals_the_whole_network_prediction(preset: str) -> None:
    spec = load_preset(preset)
    for device in ("host", "cortex-a72"):
        profile = load_profile(device)
        # exact but for attention condensers: the whole graph keeps a 16-byte shape Concat per condenser
        assert predict_by_units(spec, profile) == pytest.approx(predict(spec, profile), rel=5e-4)


def test_an_edited_child_exports_only_its_changed_unit() -> None:
    spec = load_preset("mobilenetv3_small")
    profile = load_profile("host")
    predict_by_units(spec, profile)
    before = unit_layers.cache_info()
    child = apply_mutation(spec, "kernel_up", 2, 1)
    predict_by_units(child, profile)
    after = unit_layers.cache_info()
    assert after.misses - before.misses == 1
