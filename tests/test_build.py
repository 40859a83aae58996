"""The builder: any valid input size, unit naming, whole-network re-parameterisation."""

from __future__ import annotations

import pytest
import torch

from explorer.build import ExplorerNet, build_model, reparameterize
from explorer.design import load_design, load_preset
from explorer.presets import list_presets
from explorer.spec import expand_units


@pytest.mark.parametrize("name", list_presets())
def test_presets_run_at_other_input_sizes(name: str) -> None:
    model = build_model(load_preset(name)).eval()
    with torch.no_grad():
        for size in ((96, 96), (72, 104)):
            assert model(torch.randn(1, 3, *size)).shape == (1, 1000)


def test_units_match_the_spec_and_features_skip_the_head() -> None:
    spec = load_preset("attendnext")
    model = build_model(spec)
    assert isinstance(model, ExplorerNet)
    assert [n for n, _ in model.units()] == [u.name for u in expand_units(spec)] == model.unit_names
    feats = model.forward_features(torch.randn(1, 3, 64, 64))
    assert feats.shape[1] == model.num_features


def test_whole_mobileone_reparameterises_with_identical_outputs() -> None:
    model = build_model(load_preset("mobileone_s1"))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 1.5)
            m.running_mean.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        after = reparameterize(model)(x)
    assert (before - after).abs().max() < 1e-4 * before.abs().max().clamp(min=1)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_build_takes_a_validated_spec_only() -> None:
    model = build_model(load_design(load_preset("mobilenetv3_small").to_yaml()))
    assert model.spec.name == "mobilenetv3_small"
    with pytest.raises(TypeError, match="load_design"):
        build_model(load_preset("mobilenetv3_small").to_yaml())  # type: ignore[arg-type]
