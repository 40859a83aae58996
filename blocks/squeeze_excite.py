"""Squeeze-and-excitation channel attention (Hu et al., CVPR 2018).

    s = gate(W2 · act(W1 · mean_hw(x) + b1) + b2)        W1: C_r × C, W2: C × C_r
    y = x ⊙ s                                              N×C×H×W -> N×C×H×W

with ``C_r = make_divisible(C · ratio, 8)`` and the gate a (hard) sigmoid, as in MobileNetV3.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from .common import Ratio, make_activation, make_divisible
from .registry import register_block

__all__ = ["SqueezeExcite"]


@register_block("se", category="attention")
class SqueezeExcite(nn.Module):
    """Squeeze-excite: re-weight channels by a gate computed from their global average."""

    def __init__(
        self,
        in_channels: int,
        ratio: Ratio = 0.25,
        gate: Literal["hsigmoid", "sigmoid"] = "hsigmoid",
        act: Literal["relu", "swish"] = "relu",
    ) -> None:
        super().__init__()
        if ratio <= 0:
            raise ValueError("ratio must be above 0 for a squeeze-excite block; use e.g. 0.25")
        reduced = make_divisible(in_channels * ratio, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(in_channels, reduced, 1, bias=True)
        self.act = make_activation(act)
        self.expand = nn.Conv2d(reduced, in_channels, 1, bias=True)
        self.gate = make_activation(gate)
        self.out_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * s
