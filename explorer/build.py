"""Spec -> ``torch.nn.Module``.

``build_model`` turns a validated spec (``explorer.design.load_design``) into an ``ExplorerNet``: ``stem`` (Sequential),
``stages`` (ModuleList of Sequentials whose children are named after the units, ``b1``, ``b2``
...) and ``head``. The network works at any valid input size (the head pools globally).
``reparameterize`` folds every re-parameterisable block (MobileOne) for inference.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn

from blocks import get_block

from .spec import ArchitectureSpec, BlockSpec, ParallelSpec, SpecError, Unit, expand_units

__all__ = ["ExplorerNet", "ParallelBlock", "build_model", "build_unit", "reparameterize", "unit_out_channels"]


class ParallelBlock(nn.Module):
    """Columns fed the same input, merged by element-wise sum or channel concatenation.

    add:    y = Σ_i F_i(x)          every column must give the same shape
    concat: y = [F_1(x); ...; F_n(x)] along channels (same resolution)
    """

    def __init__(self, branches: list[nn.Sequential], merge: str) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.merge = merge
        widths = [unit_out_channels(b) for b in branches]
        if merge == "add" and len(set(widths)) > 1:
            raise ValueError(
                f"columns end with {', '.join(map(str, widths))} channels; 'add' needs equal widths "
                "(make them equal or use merge: concat)"
            )
        self.out_channels = sum(widths) if merge == "concat" else widths[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches]
        shapes = {tuple(int(d) for d in o.shape[-2:]) for o in outs}
        if len(shapes) > 1 and not torch.jit.is_tracing():
            raise ValueError(
                f"columns end at different resolutions {sorted(shapes)}; give every column the same stride"
            )
        if self.merge == "concat":
            return torch.cat(outs, dim=1)
        return torch.stack(outs).sum(0) if len(outs) > 2 else outs[0] + outs[1]


def unit_out_channels(module: nn.Module) -> int:
    """Output channels of a block or a Sequential of blocks."""
    declared = getattr(module, "out_channels", None)
    if declared is not None:
        return int(declared)
    if isinstance(module, nn.Sequential):
        return unit_out_channels(module[-1])
    raise TypeError(f"{type(module).__name__} does not declare out_channels")


def _build_block(block: BlockSpec, in_channels: int, num_classes: int) -> nn.Module:
    return get_block(block.type).build(in_channels, block.params, num_classes=num_classes)


def build_unit(config: BlockSpec | ParallelSpec, in_channels: int, num_classes: int = 1000) -> nn.Module:
    """Build one unit (a block or a parallel group) for ``in_channels`` input channels."""
    if isinstance(config, ParallelSpec):
        columns = []
        for branch in config.branches:
            layers, c = [], in_channels
            for block in branch:
                layers.append(_build_block(block, c, num_classes))
                c = unit_out_channels(layers[-1])
            columns.append(nn.Sequential(*layers))
        return ParallelBlock(columns, config.merge)
    return _build_block(config, in_channels, num_classes)


class ExplorerNet(nn.Module):
    """A network built from a spec: stem -> stages -> head.   N×C×H×W -> N×num_classes"""

    def __init__(self, spec: ArchitectureSpec) -> None:
        super().__init__()
        self.spec = spec
        units = expand_units(spec)
        channels = spec.input.channels
        groups: list[OrderedDict[str, nn.Module]] = [OrderedDict() for _ in range(len(spec.stages) + 1)]
        self.unit_names: list[str] = []
        head: nn.Module | None = None
        for unit in units:
            module = _build_unit_at(unit, channels, spec.num_classes)
            self.unit_names.append(unit.name)
            if unit.address.is_head:
                head = module
            else:
                groups[unit.address.stage][f"b{unit.index}"] = module
                channels = unit_out_channels(module)
        assert head is not None, "expand_units always ends with the head"
        self.stem = nn.Sequential(groups[0])
        self.stages = nn.ModuleList(nn.Sequential(g) for g in groups[1:])
        self.head = head
        self.num_features = channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone: N×C×H×W -> N×C_f×H/r×W/r (everything before the head)."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def units(self) -> list[tuple[str, nn.Module]]:
        """(unit name, module) in execution order, matching ``expand_units(spec)``."""
        return [(unit.name, self.get_submodule(unit.module_path)) for unit in expand_units(self.spec)]


def _build_unit_at(unit: Unit, in_channels: int, num_classes: int) -> nn.Module:
    try:
        return build_unit(unit.config, in_channels, num_classes)
    except ValueError as exc:
        raise SpecError(f"{unit.place}: {exc}") from None


def build_model(spec: ArchitectureSpec) -> ExplorerNet:
    """Build the network for a validated spec (read any design with ``explorer.design.load_design``)."""
    if not isinstance(spec, ArchitectureSpec):
        raise TypeError(f"build_model takes a validated ArchitectureSpec, not {type(spec).__name__}; "
                        "read the design with explorer.design.load_design first")
    return ExplorerNet(spec)


def reparameterize(model: nn.Module) -> nn.Module:
    """Fold every re-parameterisable block in place (MobileOne); returns ``model``.

    Outputs are unchanged in eval mode; the model is put in eval mode.
    """
    model.eval()
    for module in list(model.modules()):
        fold = getattr(module, "reparameterize", None)
        if callable(fold):
            fold()
    return model
