"""``explorer weights import`` and ``explorer evaluate``: timm's checkpoints onto our peer presets.

timm (a test-only dependency, imported through ``explorer.timm_compat``) builds each peer with random
weights; every tensor, BatchNorm statistics included, is then randomised so that a swapped pair of
same-shaped tensors would change the logits. The state dict is saved as ``.pth`` and (where
safetensors is installed) ``.safetensors``, imported, and the logits compared with timm's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from timm_import import import_timm

from explorer.checkpoint import load_checkpoint
from explorer.cli import main
from explorer.evaluate import IMAGENET_MEAN, IMAGENET_STD, evaluate_folder, load_eval_image
from explorer.weights_import import TIMM_NAMES, WeightsImportError, import_timm_weights, read_state_dict

pytestmark = pytest.mark.slow  # timm's import and five full-size networks: tens of seconds


@pytest.fixture(scope="module")
def timm() -> Any:
    return import_timm()


def _randomised(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            state[k] = v.clone()
        elif k.endswith("running_var"):
            state[k] = torch.rand(v.shape, generator=gen) + 0.5
        else:
            state[k] = torch.randn(v.shape, generator=gen) * (0.1 if v.ndim > 1 else 0.5) + (
                1.0 if k.endswith(".weight") and v.ndim == 1 else 0.0)
    return state


@pytest.mark.parametrize("preset", sorted(TIMM_NAMES))
def test_a_timm_checkpoint_gives_timms_logits(timm: Any, preset: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    reference = timm.create_model(TIMM_NAMES[preset], pretrained=False).eval()
    state = _randomised(reference, seed=len(preset))
    reference.load_state_dict(state)
    files = [tmp_path / "timm.pth"]
    torch.save(state, files[0])
    try:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "timm.safetensors"))
        files.append(tmp_path / "timm.safetensors")
    except ImportError:
        pass
    for file in files:
        out = tmp_path / f"{file.suffix[1:]}.pt"
        assert main(["weights", "import", preset, str(file), "-o", str(out), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["verified"] and report["relative_error"] < 1e-4
        spec, model = load_checkpoint(out)  # the one checkpoint format, read with weights_only=True
        x = torch.randn(2, 3, *spec.input.hw, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            want, got = reference(x), model(x)
        assert (got - want).abs().max() / want.abs().max() < 1e-4
        assert (got.argmax(1) == want.argmax(1)).all()


def test_misfits_are_refused_with_the_first_mismatch(timm: Any, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # a MobileNetV3-Small checkpoint is not FBNet-C's
    state = timm.create_model("mobilenetv3_small_100", pretrained=False).state_dict()
    torch.save(state, tmp_path / "small.pth")
    assert main(["weights", "import", "fbnet_c", str(tmp_path / "small.pth"), "-o", str(tmp_path / "w.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has shape" in err and "expects" in err and "another network" in err
    assert not (tmp_path / "w.pt").exists()
    # one tensor missing: the count differs
    state.pop(next(k for k in state if k.endswith("bias")))
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(WeightsImportError):
        import_timm_weights("mobilenetv3_small", tmp_path / "short.pth", tmp_path / "w.pt")
    # a pickle with an object in it is never unpickled
    torch.save({"x": torch.zeros(1), "obj": Path("/")}, tmp_path / "evil.pth")
    with pytest.raises(WeightsImportError, match="refused to load"):
        read_state_dict(tmp_path / "evil.pth")
    with pytest.raises(WeightsImportError, match="no checkpoint file"):
        read_state_dict(tmp_path / "none.safetensors")


def _tiny_folder(root: Path, classes: int = 3, per_class: int = 3) -> None:
    from PIL import Image

    rng = np.random.RandomState(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            w, h = rng.randint(40, 90, size=2)
            Image.fromarray(rng.randint(0, 255, (h, w, 3), dtype=np.uint8)).save(root / f"class{c}" / f"{i}.png")


def test_evaluate_on_a_tiny_image_folder_matches_a_direct_computation(timm: Any, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    reference = timm.create_model("mobilenetv3_small_100", pretrained=False).eval()
    state = _randomised(reference, seed=3)
    reference.load_state_dict(state)
    torch.save(state, tmp_path / "t.pth")
    import_timm_weights("mobilenetv3_small", tmp_path / "t.pth", tmp_path / "w.pt")
    _tiny_folder(tmp_path / "data")
    assert main(["evaluate", "mobilenetv3_small", "--weights", str(tmp_path / "w.pt"), "--dataset",
                 str(tmp_path / "data"), "--batch", "4", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["images"] == 9 and got["classes"] == 3 and got["input_size"] == 224
    # the same numbers from timm's model on the same preprocessing, computed here image by image
    files = sorted((tmp_path / "data").rglob("*.png"))
    x = torch.from_numpy(np.stack([load_eval_image(p, 224) for p in files]))
    y = torch.tensor([int(p.parent.name[-1]) for p in files])
    with torch.no_grad():
        top5 = reference(x).topk(5, 1).indices
    assert got["top1"] == pytest.approx(float((top5[:, 0] == y).float().mean()))
    assert got["top5"] == pytest.approx(float((top5 == y[:, None]).any(1).float().mean()))
    # the preprocessing: resize the short side to 256, centre-crop 224, ImageNet normalisation
    img = load_eval_image(files[0], 224)
    assert img.shape == (3, 224, 224) and img.dtype == np.float32
    assert float(img.min()) >= -IMAGENET_MEAN[0] / IMAGENET_STD[0] - 0.2
    # the library function gives the same, with a progress report per batch
    _spec, model = load_checkpoint(tmp_path / "w.pt")
    seen: list[tuple[int, int]] = []
    result = evaluate_folder(model, tmp_path / "data", 224, batch_size=4, progress=lambda d, t: seen.append((d, t)))
    assert result.top1 == got["top1"] and seen == [(4, 9), (8, 9), (9, 9)]
    assert main(["evaluate", "mobilenetv3_small", "--weights", str(tmp_path / "w.pt"), "--dataset",
                 str(tmp_path / "nothing")]) == 2
    assert "no ImageFolder" in capsys.readouterr().err
