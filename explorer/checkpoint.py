"""One checkpoint format for a design's weights: ``{format, spec_yaml, state_dict}``.

A checkpoint holds only strings and tensors, so it loads with ``torch.load(weights_only=True)``
(nothing is unpickled but tensors and plain containers). ``spec_yaml`` is the design the weights
belong to (its input size and classes included); ``state_dict`` is that network's, either as
trained (``build_model(spec)``) or folded for inference (``reparameterize``, as ``explorer export
--format pt`` writes it). The form is told by the tensor names; on loading, every name and shape
is checked against the design first, and a mismatch is one line::

    weights file run-3.pt: tensor head.fc.weight has shape [10, 1280], the design expects [3, 1280]

Training runs (``explorer.train``) and the ``pt`` export (``explorer.export``) both write this.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from .build import ExplorerNet, build_model, reparameterize
from .design import load_design
from .spec import ArchitectureSpec, SpecError, dump_spec
from .spec_yaml import parse_spec_text

__all__ = ["FORMAT", "CheckpointError", "check_weights", "load_checkpoint", "save_checkpoint"]

FORMAT = "attendnext-explorer/state-dict/v1"

Form = Literal["trained", "folded"]


class CheckpointError(ValueError):
    """A weights file that cannot be read, or whose tensors do not fit its design (one line)."""


def _expected(spec: ArchitectureSpec, form: Form) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of the design's state dict, from a model built on the meta device."""
    with torch.device("meta"):
        model = build_model(spec)
        if form == "folded":
            reparameterize(model)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _names(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_weights(state: dict[str, torch.Tensor], spec: ArchitectureSpec, source: str | Path) -> Form:
    """Check every tensor name and shape of ``state`` against ``spec``; returns which form it is.

    Raises ``CheckpointError`` naming the first misfit: a tensor whose shape differs, or the
    missing and unexpected names.
    """
    got = {k: tuple(v.shape) for k, v in state.items()}
    forms: dict[Form, dict[str, tuple[int, ...]]] = {"trained": _expected(spec, "trained")}
    if set(got) != set(forms["trained"]):
        forms["folded"] = _expected(spec, "folded")
    form: Form = max(forms, key=lambda f: (set(got) == set(forms[f]), len(set(got) & set(forms[f]))))
    want = forms[form]
    where = f"weights file {Path(source).name}"
    missing = [k for k in want if k not in got]
    unexpected = [k for k in got if k not in want]
    if missing or unexpected:
        parts = ([f"missing tensor(s) {_names(missing)}"] if missing else []) + (
            [f"unexpected tensor(s) {_names(unexpected)}"] if unexpected else [])
        raise CheckpointError(f"{where}: {'; '.join(parts)}; these weights belong to another design")
    for name, shape in want.items():
        if got[name] != shape:
            raise CheckpointError(f"{where}: tensor {name} has shape {list(got[name])}, "
                                  f"the design expects {list(shape)}")
    return form


def save_checkpoint(path: str | Path, spec: ArchitectureSpec, model: nn.Module) -> Path:
    """Write ``model``'s weights (as trained or folded) with ``spec``; checked against ``spec`` first."""
    path = Path(path)
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    check_weights(state, spec, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "spec_yaml": dump_spec(spec), "state_dict": state}, path)
    return path


def load_checkpoint(path: str | Path) -> tuple[ArchitectureSpec, ExplorerNet]:
    """Read a checkpoint (``weights_only=True``): its design and the network with the weights, in eval mode.

    The network is folded (``reparameterize``) when the weights are.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no weights file at {path}")
    try:
        with warnings.catch_warnings():  # a foreign pickle is refused below with one line; torch's aside is noise
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            payload: Any = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError) as exc:
        raise CheckpointError(f"weights file {path.name}: not a plain file of tensors and strings; refused to load "
                              f"it ({str(exc).splitlines()[0][:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"weights file {path.name}: not an explorer checkpoint (expected format {FORMAT}); "
                              "write one with explorer train or explorer export --format pt")
    state = payload.get("state_dict")
    if not isinstance(payload.get("spec_yaml"), str) or not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"weights file {path.name}: spec_yaml or state_dict is missing or not tensors")
    try:
        spec = load_design(parse_spec_text(payload["spec_yaml"]))
    except SpecError as exc:
        raise CheckpointError(f"weights file {path.name}: its design is invalid: {exc}") from None
    form = check_weights(state, spec, path)
    model = build_model(spec)
    if form == "folded":
        reparameterize(model)
    model.load_state_dict(state)
    return spec, model.eval()
