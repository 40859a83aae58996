"""Import timm (optional: only to verify imported weights) on a machine whose torchvision cannot load its C extension.

timm imports torchvision at import time. The torchvision 0.28.0 wheel that installs here is built
against CUDA torch; with the CPU build of torch 2.13.0 its ``_C.so`` does not load, torchvision then
skips its operators but still registers fake kernels for ``torchvision::nms`` and ``torchvision::qnms``
unconditionally, and the import fails with ``operator torchvision::nms does not exist``. Defining
those two schemas (and nothing else) first lets the import through; timm's classification models use
no torchvision operator, so the networks built are exactly timm's. Where torchvision loads properly,
nothing is defined.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import torch

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library: torch.library.Library | None = None

__all__ = ["import_timm", "timm_or_none"]


def import_timm() -> ModuleType:
    """Return the ``timm`` module, working around a torchvision whose C extension cannot load."""
    global _library
    try:
        return importlib.import_module("timm")
    except RuntimeError as error:
        if "torchvision::" not in str(error) or _library is not None:
            raise
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith(("torchvision.", "timm"))]:
        del sys.modules[name]
    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        _library.define(schema)
    return importlib.import_module("timm")


def timm_or_none() -> ModuleType | None:
    """``timm`` when it can be imported here (through :func:`import_timm`), else ``None``; never raises."""
    try:
        return import_timm()
    except Exception:  # noqa: BLE001 - timm is optional; any failure to import it means "not here"
        return None
