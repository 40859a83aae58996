"""Export a design for deployment: ONNX (checked, verified against PyTorch) or a PyTorch state dict.

Both exports reparameterise first (MobileOne branches fused into one conv), so what is exported
is the inference graph whose params the analysis reports. ONNX uses the TorchScript exporter
(``dynamo=False``, opset 17: one trace, under a second per preset, and an opset the ONNX Runtime
wheels for ARM boards run), batch 1, input named ``input``, output ``logits``.

``verify_onnx`` runs the file in ONNX Runtime and returns the relative error
``max|y_ort - y_torch| / max|y_torch|`` on a seeded random input.

The ``.pt`` export is an ``explorer.checkpoint`` (``{format, spec_yaml, state_dict}``, tensors and
strings only) of the folded network; ``explorer.checkpoint.load_checkpoint`` reads it back.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from .build import build_model, reparameterize
from .checkpoint import save_checkpoint
from .design import retarget
from .spec import ArchitectureSpec

__all__ = ["OPSET", "export", "export_onnx", "export_pt", "onnx_bytes", "verify_onnx"]

OPSET = 17


def _inference_model(spec: ArchitectureSpec, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return reparameterize(build_model(spec)).eval()


def _example_input(spec: ArchitectureSpec, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, spec.input.channels, *spec.input.hw, generator=gen)


def onnx_bytes(spec: ArchitectureSpec, model: nn.Module | None = None) -> bytes:
    """The ONNX serialisation of the (reparameterised) design at its input size, batch 1."""
    model = model if model is not None else _inference_model(spec)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # the TorchScript exporter (dynamo=False) writes to a file object too; the stub only names paths
        torch.onnx.export(model, (_example_input(spec),), buffer, dynamo=False, opset_version=OPSET,  # type: ignore[arg-type]
                          input_names=["input"], output_names=["logits"], do_constant_folding=True)
    return buffer.getvalue()


def verify_onnx(data: bytes | Path, spec: ArchitectureSpec, model: nn.Module, seed: int = 1) -> float:
    """``onnx.checker`` the model, run it in ONNX Runtime and return its relative error vs PyTorch."""
    import onnx
    import onnxruntime as ort

    raw = data.read_bytes() if isinstance(data, Path) else data
    onnx.checker.check_model(onnx.load_from_string(raw))
    session = ort.InferenceSession(raw, providers=["CPUExecutionProvider"])
    x = _example_input(spec, seed)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    scale = float(np.abs(want).max()) or 1.0
    return float(np.abs(got - want).max()) / scale


def export_onnx(spec: ArchitectureSpec, path: Path, verify: bool = True) -> float | None:
    """Write ``path`` (ONNX); with ``verify``, also check it and return the relative error."""
    model = _inference_model(spec)
    data = onnx_bytes(spec, model)
    Path(path).write_bytes(data)
    return verify_onnx(data, spec, model) if verify else None


def export_pt(spec: ArchitectureSpec, path: Path, model: nn.Module | None = None) -> None:
    """Write a checkpoint of the reparameterised network (``model``, or a seeded fresh one) and its spec."""
    model = model if model is not None else _inference_model(spec)
    save_checkpoint(path, spec, model)


def export(
    spec: ArchitectureSpec, fmt: Literal["onnx", "pt"], path: Path, input_size: int | None = None
) -> float | None:
    """Export in ``fmt`` at ``input_size`` (default: the spec's); ONNX returns its verified error."""
    if input_size is not None:
        spec = retarget(spec, input_size=input_size)
    if fmt == "onnx":
        return export_onnx(spec, path)
    if fmt == "pt":
        export_pt(spec, path)
        return None
    raise ValueError(f"unknown export format {fmt!r}; use onnx or pt")
