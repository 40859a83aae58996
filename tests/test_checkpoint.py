"""One checkpoint format: trained and folded weights round-trip, and a misfit is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from explorer.build import build_model, reparameterize
from explorer.checkpoint import FORMAT, CheckpointError, check_weights, load_checkpoint, save_checkpoint
from explorer.design import load_design, retarget
from explorer.spec import ArchitectureSpec

from tiny_designs import tiny_design

TINY = load_design(tiny_design(width=16, last={"type": "mobileone", "out": 32, "stride": 2}))


def _model(spec: ArchitectureSpec = TINY, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(spec).eval()


@pytest.mark.parametrize("fold", [False, True])
def test_trained_and_folded_weights_round_trip(tmp_path: Path, fold: bool) -> None:
    model = _model()
    if fold:
        reparameterize(model)
    path = save_checkpoint(tmp_path / "w.pt", TINY, model)
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"format", "spec_yaml", "state_dict"} and payload["format"] == FORMAT
    spec, loaded = load_checkpoint(path)
    assert spec == TINY and not loaded.training
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)
    assert any("fused" in k for k in loaded.state_dict()) == fold  # folded weights load into a folded network


def test_a_shape_misfit_names_the_tensor_and_both_shapes(tmp_path: Path) -> None:
    state = _model().state_dict()
    with pytest.raises(CheckpointError) as info:
        check_weights(state, retarget(TINY, num_classes=3), tmp_path / "run-3.pt")
    assert str(info.value) == ("weights file run-3.pt: tensor head.fc.weight has shape [10, 32], "
                               "the design expects [3, 32]")


def test_missing_and_unexpected_names_are_listed(tmp_path: Path) -> None:
    state = dict(_model().state_dict())
    state.pop("head.fc.bias")
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"w.pt: missing tensor\(s\) head.fc.bias; unexpected tensor\(s\) "
                                              r"extra.weight; these weights belong to another design"):
        check_weights(state, TINY, "w.pt")
    other = load_design(tiny_design(width=8))  # another design altogether: refused before anything is written
    with pytest.raises(CheckpointError, match="w.pt: "):
        save_checkpoint(tmp_path / "w.pt", other, _model())
    assert not (tmp_path / "w.pt").exists()


def test_unreadable_and_unsafe_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no weights file at"):
        load_checkpoint(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: not a plain file of tensors and strings; refused to load"):
        load_checkpoint(junk)
    bad = tmp_path / "bad.pt"
    torch.save({"format": FORMAT, "spec_yaml": "name: x\nstages: 3\n", "state_dict": {}}, bad)
    with pytest.raises(CheckpointError, match="bad.pt: its design is invalid: stages 3 should be a list"):
        load_checkpoint(bad)
