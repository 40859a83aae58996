"""Inverted residual block (MBConv; Sandler et al. 2018, with squeeze-excite as in
MobileNetV3, Howard et al. 2019).

    m = make_divisible(C_in · e, 8)
    h = act(BN(E · x))                  1×1 expansion       N×C_in×H×W  -> N×m×H×W
    h = act(BN(D * h))                  depthwise k×k, s    N×m×H×W     -> N×m×H'×W'
    h = SE(h)                           optional, C_r = make_divisible(m · r, 8)
    y = BN(P · h) (+ x)                 1×1 linear projection, residual if s = 1 and C_in = C_out
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn as nn
from pydantic import Field

from .common import Activation, Channels, Kernel, Ratio, Stride, make_divisible
from .conv import ConvBnAct
from .registry import register_block
from .squeeze_excite import SqueezeExcite

__all__ = ["InvertedResidual"]

Expansion = Annotated[float, Field(ge=1.0, le=8.0, description="expansion ratio of the hidden width (1 to 8)")]


@register_block("ir", category="conv")
class InvertedResidual(nn.Module):
    """Inverted residual (MBConv): 1×1 expand, depthwise k×k, optional SE, 1×1 project."""

    def __init__(
        self,
        in_channels: int,
        out: Channels,
        kernel: Kernel = 3,
        stride: Stride = 1,
        expand: Expansion = 4.0,
        act: Activation = "relu",
        se: Ratio = 0.0,
        se_gate: Literal["hsigmoid", "sigmoid"] = "hsigmoid",
        residual: bool = True,
        anti_alias: bool = False,
    ) -> None:
        super().__init__()
        mid = make_divisible(in_channels * expand)
        self.expand = ConvBnAct(in_channels, mid, 1, act=act)
        self.dw = ConvBnAct(mid, mid, kernel, stride, groups=0, act=act, anti_alias=anti_alias)
        self.se = SqueezeExcite(mid, ratio=se, gate=se_gate) if se > 0 else nn.Identity()
        self.project = ConvBnAct(mid, out, 1, act="none")
        self.has_residual = residual and stride == 1 and in_channels == out
        self.mid_channels = mid
        self.out_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.dw(self.expand(x))))
        return y + x if self.has_residual else y
