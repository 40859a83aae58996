"""Presets reproduce the published figures, and the analysis agrees with a fresh fvcore count."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from explorer.analysis import analyze, fvcore_counter
from explorer.build import build_model, reparameterize
from explorer.design import load_design, load_preset
from explorer.presets import PRESET_ORDER, list_presets
from explorer.spec import SpecError

# Published params (M) and fvcore GMACs from ../shared/REFERENCE.md (timm 1.0, inference form).
PUBLISHED = {
    "mobilenetv3_large": (5.48, 0.225),
    "mobilenetv3_small": (2.54, 0.059),
    "fbnet_c": (5.57, 0.398),
    "mobileone_s1": (4.76, 0.825),
    "mobilevit_xs": (2.32, 0.935),
}


def test_every_preset_is_listed() -> None:
    assert list_presets()[: len(PRESET_ORDER)] == list(PRESET_ORDER)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_peer_matches_published_params_and_macs(name: str) -> None:
    params_m, gmacs = PUBLISHED[name]
    a = analyze(load_preset(name))
    assert abs(a.params / 1e6 / params_m - 1) < 0.02, f"{name}: {a.params / 1e6:.3f} M params vs {params_m}"
    assert abs(a.macs / 1e9 / gmacs - 1) < 0.05, f"{name}: {a.macs / 1e9:.4f} GMACs vs {gmacs}"


def test_attendnext_reconstruction_is_about_four_million_params() -> None:
    a = analyze(load_preset("attendnext"))
    # the paper: > 1.37x smaller than MobileNetV3-L's 5.48 M, i.e. at most 4.0 M
    assert 3.8e6 <= a.params <= 4.0e6
    assert 5.48e6 / a.params > 1.37
    types = [b.type for b in a.blocks]
    condensers = [b for b in a.blocks if b.type == "attention_condenser"]
    assert condensers and all(b.in_shape[-1] >= 28 for b in condensers), "DC-AC only where resolution is high"
    assert all(load_preset("attendnext").stages[0].blocks[0].params["condense_steps"] == 2 for _ in [0])
    assert types.count("blurpool") == 5, "every downsampling is anti-aliased"


@pytest.mark.slow
@pytest.mark.parametrize("name", list_presets())
def test_analysis_equals_a_fresh_whole_model_fvcore_count(name: str) -> None:
    spec = load_preset(name)
    a = analyze(spec)
    model = reparameterize(build_model(spec))
    x = torch.zeros(1, spec.input.channels, *spec.input.hw)
    counter = fvcore_counter(model, x)
    assert a.params == sum(p.numel() for p in model.parameters())
    assert a.macs + a.uncounted_macs == counter.total()
    assert a.uncounted_macs == counter.by_operator().get("scaled_dot_product_attention", 0)
    with torch.no_grad():
        assert model(x).shape == (1, spec.num_classes)


def test_mobilevit_reports_the_attention_products_fvcore_skips() -> None:
    a = analyze(load_preset("mobilevit_xs"))
    # per layer 2·p²·T²·d for T = HW/p² tokens: 2 layers at d=96 (32x32), 4 at 120 (16x16), 3 at 144 (8x8)
    expected = sum(depth * 2 * 4 * (hw * hw // 4) ** 2 * d for depth, hw, d in ((2, 32, 96), (4, 16, 120), (3, 8, 144)))
    assert a.uncounted_macs == expected


def test_load_design_accepts_names_and_paths(tmp_path: Path) -> None:
    assert load_design("attendnext").name == "attendnext"
    path = tmp_path / "x.yaml"
    path.write_text(load_preset("mobilenetv3_small").to_yaml())
    assert load_design(str(path)) == load_preset("mobilenetv3_small")


def test_load_design_accepts_text_mappings_and_specs() -> None:
    small = load_preset("mobilenetv3_small")
    assert load_design(small.to_yaml()) == small
    assert load_design(small.to_dict()) == small
    assert load_design(small) == small  # a spec is validated again, not trusted
    with pytest.raises(SpecError, match="neither a preset"):
        load_design("no_such_preset")
