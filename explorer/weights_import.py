"""Import a timm checkpoint (``.safetensors`` or ``.pth``) onto a peer preset, as an explorer checkpoint.

Every peer preset is timm's network layer for layer (see ``assets/presets``), so timm's tensors fit
ours. ``import_timm_weights(preset, file)``:

1. reads the file safely: ``safetensors`` (no code at all) or ``torch.load(weights_only=True)``
   (tensors and plain containers only); a ``{"state_dict": …}`` / ``{"model": …}`` wrapper and a
   ``module.`` prefix are taken off. A ``.safetensors`` file stores tensors sorted by name, so their
   registration order comes from timm's model (built on the meta device, nothing downloaded); without
   timm such a file is refused unless its names are ours;
2. maps it onto the preset's network as built for training (``build_model``; MobileOne's branches
   unfused): by name when every one of our tensor names is in the file with our shape, otherwise by
   order and shape: the i-th tensor of the file (BatchNorm's ``num_batches_tracked`` counters left
   aside on both sides) goes to our i-th, and the first pair whose shapes differ is refused with one
   line naming both tensors; so is a different number of tensors. Two differences of layout are
   known and allowed: a 1×1 convolution's weight (timm's ``conv_head``) fits our linear layer
   (``O×I×1×1`` = ``O×I``), and MobileOne's BatchNorm-only ``identity`` branch, which timm registers
   before the conv branches of a block and we after, is taken as the last of its block on both sides;
3. verifies, when timm can be imported here (it is never required), against timm's own model built
   with the same tensors: the largest difference of the logits on a seeded random input, relative
   to the largest logit, must be below 1e-4;
4. writes an :mod:`explorer.checkpoint` (the one weights format: what a training run stores), which
   ``explorer evaluate --weights``, ``explorer quantize --weights`` and ``load_checkpoint`` read.

Nothing is downloaded. timm keeps checkpoints a user fetched in the Hugging Face hub cache
(``~/.cache/huggingface/hub/models--timm--<name>/snapshots/<hash>/model.safetensors``, or
``$HF_HOME/hub``); older timm versions used ``~/.cache/torch/hub/checkpoints/*.pth``.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .build import build_model
from .checkpoint import save_checkpoint
from .design import load_design
from .spec import ArchitectureSpec

__all__ = ["TIMM_NAMES", "ImportReport", "WeightsImportError", "import_timm_weights", "map_state_dict",
           "read_state_dict", "verify_against_timm"]

#: our peer presets -> timm's model names
TIMM_NAMES = {
    "mobilenetv3_large": "mobilenetv3_large_100",
    "mobilenetv3_small": "mobilenetv3_small_100",
    "fbnet_c": "fbnetc_100",
    "mobileone_s1": "mobileone_s1",
    "mobilevit_xs": "mobilevit_xs",
}
MAX_CHECKPOINT_BYTES = 2 << 30
TOLERANCE = 1e-4
_COUNTER = "num_batches_tracked"


class WeightsImportError(ValueError):
    """A checkpoint that cannot be read or does not fit the preset (one line naming the first misfit)."""


@dataclass
class ImportReport:
    """What ``import_timm_weights`` did: how tensors were matched and how the logits compared with timm's."""

    preset: str
    timm_name: str | None
    tensors: int
    matched_by: str  # "name" or "order"
    verified: bool  # compared with timm's own model
    relative_error: float | None
    path: str


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` or ``.pth``/``.pt``/``.bin`` file, read without running any code."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsImportError(f"no checkpoint file at {path}")
    if path.stat().st_size > MAX_CHECKPOINT_BYTES:
        raise WeightsImportError(f"{path.name} is larger than {MAX_CHECKPOINT_BYTES >> 30} GiB; is it a checkpoint?")
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise WeightsImportError(f"{path.name}: reading .safetensors needs the safetensors package "
                                     "(pip install safetensors), or give a .pth file") from None
        try:
            state: Any = load_file(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own types
            raise WeightsImportError(f"{path.name}: not a readable safetensors file ({exc})") from None
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise WeightsImportError(f"{path.name}: not a plain file of tensors; refused to load it "
                                     f"({first})") from None
    for key in ("state_dict_ema", "state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsImportError(f"{path.name}: no state dict of tensors in it")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _without_counters(state: Mapping[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    return [(k, v) for k, v in state.items() if not k.endswith(_COUNTER)]


def _identity_last(items: list[tuple[str, torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
    """The same tensors with every ``….identity.…`` group moved after the rest of its parent module.

    MobileOne's BatchNorm-only identity branch: timm registers it before the conv branches, we after.
    """
    out: list[tuple[str, torch.Tensor]] = []
    pending: list[tuple[str, list[tuple[str, torch.Tensor]]]] = []  # (parent prefix, the identity group)
    for key, value in items:
        while pending and not key.startswith(pending[-1][0]):
            out += pending.pop()[1]
        parts = key.split(".")
        if "identity" in parts[:-1]:
            i = parts.index("identity")
            parent, group = ".".join(parts[:i]) + ".", ".".join(parts[:i + 1]) + "."
            if pending and pending[-1][1][0][0].startswith(group):
                pending[-1][1].append((key, value))
            else:
                pending.append((parent, [(key, value)]))
        else:
            out.append((key, value))
    while pending:
        out += pending.pop()[1]
    return out


def _fits(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Equal shapes, or equal but for trailing 1s (a 1×1 convolution's weight is a linear layer's)."""
    def strip(s: tuple[int, ...]) -> tuple[int, ...]:
        while len(s) > 2 and s[-1] == 1:
            s = s[:-1]
        return s

    return shape == target or strip(shape) == strip(target)


def map_state_dict(source: Mapping[str, torch.Tensor], model: nn.Module, where: str = "the checkpoint"
                   ) -> tuple[dict[str, torch.Tensor], str]:
    """``source``'s tensors under ``model``'s names (by name if they all tell, else by order and shape)."""
    ours = model.state_dict()
    want = _without_counters(ours)
    if all(k in source and tuple(source[k].shape) == tuple(v.shape) for k, v in want):
        mapped = {k: source[k] for k, _ in want}
        how = "name"
    else:
        want, got = _identity_last(want), _identity_last(_without_counters(source))
        for i, ((mine, target), (theirs, tensor)) in enumerate(zip(want, got, strict=False)):
            if not _fits(tuple(tensor.shape), tuple(target.shape)):
                raise WeightsImportError(f"{where}: tensor {i} ({theirs}) has shape {list(tensor.shape)}, the "
                                         f"preset's {mine} expects {list(target.shape)}; these are weights of "
                                         "another network")
        if len(got) != len(want):
            raise WeightsImportError(f"{where}: {len(got)} tensors, the preset has {len(want)} (BatchNorm counters "
                                     "aside); these are weights of another network")
        mapped = {mine: tensor for (mine, _), (_, tensor) in zip(want, got, strict=True)}
        how = "order"
    out = {}
    for k, v in ours.items():
        out[k] = mapped[k].to(v.dtype).reshape(v.shape).clone() if k in mapped else v.clone()  # counters: ours
    return out, how


def verify_against_timm(state: Mapping[str, torch.Tensor], timm_name: str, spec: ArchitectureSpec,
                        model: nn.Module) -> float | None:
    """max |ours − timm's| / max |timm's| of the logits on a seeded input; ``None`` when timm is not importable."""
    from .timm_compat import timm_or_none

    timm = timm_or_none()
    if timm is None:
        return None
    reference = timm.create_model(timm_name, pretrained=False, num_classes=spec.num_classes).eval()
    reference.load_state_dict(dict(state), strict=True)
    x = torch.randn(2, spec.input.channels, *spec.input.hw, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = reference(x)
        got = model.eval()(x)
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-12))


def _in_timm_order(source: dict[str, torch.Tensor], timm_name: str | None, spec: ArchitectureSpec,
                   file: Path) -> dict[str, torch.Tensor]:
    """``source`` in the order timm's model registers its tensors (a .safetensors file keeps names sorted).

    Without timm a ``.pth`` keeps its own (the saving model's) order; a ``.safetensors`` file has lost
    it, and is refused unless its names are ours.
    """
    from .timm_compat import timm_or_none

    timm = timm_or_none() if timm_name is not None else None
    if timm is not None:
        with torch.device("meta"):
            order = list(timm.create_model(timm_name, pretrained=False, num_classes=spec.num_classes).state_dict())
        if set(order) == set(source):
            return {k: source[k] for k in order}
    elif file.suffix.lower() == ".safetensors":
        with torch.device("meta"):
            ours = set(build_model(spec).state_dict())
        if not ours <= set(source):
            raise WeightsImportError(f"{file.name}: a .safetensors file keeps its tensors sorted by name, and their "
                                     "order is needed to map timm's names onto ours: run this where timm is installed "
                                     "(pip install timm), or give timm's .pth file")
    return source


def import_timm_weights(preset: str, file: str | Path, output: str | Path, verify: bool = True) -> ImportReport:
    """Map the timm checkpoint ``file`` onto ``preset`` and write an explorer checkpoint at ``output``."""
    spec = load_design(preset)
    output = Path(output).expanduser()
    if not output.parent.is_dir():
        raise WeightsImportError(f"-o {output}: the folder {output.parent} does not exist")
    source = read_state_dict(file)
    torch.manual_seed(0)
    model = build_model(spec)
    timm_name = TIMM_NAMES.get(spec.name)
    source = _in_timm_order(source, timm_name, spec, Path(file))
    state, how = map_state_dict(source, model, Path(file).name)
    model.load_state_dict(state)
    model.eval()
    error = None
    if verify and timm_name is not None:
        try:
            error = verify_against_timm(source, timm_name, spec, model)
        except RuntimeError as exc:  # timm's own model refuses the file: it is not that network's checkpoint
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise WeightsImportError(f"{Path(file).name}: timm's {timm_name} does not take these weights "
                                     f"({first})") from None
        if error is not None and not error < TOLERANCE:
            raise WeightsImportError(f"{Path(file).name}: mapped onto {spec.name}, the logits differ from timm's "
                                     f"{timm_name} by {error:.1e} (relative); the mapping is wrong, nothing written")
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        save_checkpoint(tmp, spec, model)
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    return ImportReport(preset=spec.name, timm_name=timm_name, tensors=len(_without_counters(state)), matched_by=how,
                        verified=error is not None, relative_error=error, path=str(output))
