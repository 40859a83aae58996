"""Export: ONNX passes the checker and matches PyTorch for every preset; .pt loads with weights_only."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch

from explorer.build import build_model, reparameterize
from explorer.checkpoint import FORMAT, load_checkpoint
from explorer.cli import main
from explorer.design import load_preset
from explorer.export import export, export_pt, onnx_bytes, verify_onnx
from explorer.presets import list_presets


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_exports_to_onnx_matching_pytorch(name: str) -> None:
    spec = load_preset(name)  # at its native input size
    torch.manual_seed(0)
    model = reparameterize(build_model(spec)).eval()
    data = onnx_bytes(spec, model)
    onnx.checker.check_model(onnx.load_from_string(data))
    assert verify_onnx(data, spec, model) < 1e-4


def test_mobileone_is_reparameterised_before_export() -> None:
    graph = onnx.load_from_string(onnx_bytes(load_preset("mobileone_s1"))).graph
    ops = [n.op_type for n in graph.node]
    assert "BatchNormalization" not in ops
    # one convolution per unit after fusing (a MobileOne block has k + 2 branches while training)
    train_convs = sum(isinstance(m, torch.nn.Conv2d) for m in build_model(load_preset("mobileone_s1")).modules())
    assert ops.count("Conv") < train_convs


def test_pt_export_round_trips_with_weights_only(tmp_path: Path) -> None:
    spec = load_preset("mobilenetv3_small")
    path = tmp_path / "m.pt"
    export_pt(spec, path)
    payload = torch.load(path, weights_only=True)  # tensors and strings only
    assert set(payload) == {"format", "spec_yaml", "state_dict"} and payload["format"] == FORMAT
    loaded_spec, model = load_checkpoint(path)
    assert loaded_spec == spec
    x = torch.randn(1, 3, 64, 64)
    torch.manual_seed(0)
    reference = reparameterize(build_model(spec)).eval()
    reference.load_state_dict(payload["state_dict"])
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_load_checkpoint_refuses_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="other.pt: not an explorer checkpoint"):
        load_checkpoint(path)


def test_export_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a.onnx"
    assert main(["export", "mobilenetv3_small", "--input", "96", "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["relative_error"] < 1e-4 and out.stat().st_size == result["bytes"]
    shape = onnx.load(str(out)).graph.input[0].type.tensor_type.shape
    assert [d.dim_value for d in shape.dim] == [1, 3, 96, 96]
    assert main(["export", "mobilenetv3_small", "--format", "pt", "-o", str(tmp_path / "a.pt")]) == 0
    assert main(["export", "mobilenetv3_small", "-o", str(tmp_path / "missing" / "a.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown export format"):
        export(load_preset("mobilenetv3_small"), "tflite", tmp_path / "x")  # type: ignore[arg-type]
