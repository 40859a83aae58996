"""Convolution units: conv-bn-act and the depthwise-separable convolution.

ConvBnAct (the unit everything else is made of):

    y = act(BN(W * x))          W: C_out × (C_in / g) × k × k, stride s, padding k // 2
    N×C_in×H×W -> N×C_out×ceil(H/s)×ceil(W/s)

With ``anti_alias`` and stride 2 the convolution runs at stride 1 and a BlurPool does the
subsampling (Zhang 2019): ``y = BlurPool(act(BN(W * x)))``.

DepthwiseSeparable (MobileNet, Howard et al. 2017; the ``ds`` block of MobileNetV3):

    y = BN(P · SE(act(BN(D * x)))) (+ x if stride 1 and C_in = C_out)

with D a depthwise k×k convolution (one filter per channel) and P a point-wise 1×1 one.
Cost ≈ H'W'·C_in·(k² + C_out) multiply-accumulates instead of H'W'·C_in·C_out·k².
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from .antialias import BlurPool
from .common import Activation, Channels, Groups, Kernel, Ratio, Stride, make_activation
from .registry import register_block
from .squeeze_excite import SqueezeExcite

__all__ = ["ConvBnAct", "DepthwiseSeparable", "resolve_groups"]

def resolve_groups(groups: int, in_channels: int, out_channels: int) -> int:
    """Turn the spec's ``groups`` (0 = depthwise) into a valid group count or explain why not."""
    g = in_channels if groups == 0 else groups
    if in_channels % g or out_channels % g:
        raise ValueError(
            f"groups {g} must divide both the input channels ({in_channels}) and the output "
            f"channels ({out_channels}); use a divisor of both, 1, or 0 for depthwise"
        )
    return g


@register_block("conv", category="conv")
class ConvBnAct(nn.Sequential):
    """Convolution, batch norm, activation (optionally anti-aliased when strided)."""

    def __init__(
        self,
        in_channels: int,
        out: Channels,
        kernel: Kernel = 3,
        stride: Stride = 1,
        groups: Groups = 1,
        act: Activation = "relu",
        norm: bool = True,
        anti_alias: bool = False,
    ) -> None:
        g = resolve_groups(groups, in_channels, out)
        blur = anti_alias and stride > 1
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out, kernel, 1 if blur else stride, kernel // 2, groups=g, bias=not norm)
        ]
        if norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(make_activation(act))
        if blur:
            layers.append(BlurPool(out, filter_size=3, stride=stride))
        super().__init__(*layers)
        self.out_channels = out


@register_block("dwsep", category="conv")
class DepthwiseSeparable(nn.Module):
    """Depthwise k×k then point-wise 1×1 convolution, optional squeeze-excite and residual."""

    def __init__(
        self,
        in_channels: int,
        out: Channels,
        kernel: Kernel = 3,
        stride: Stride = 1,
        act: Activation = "relu",
        se: Ratio = 0.0,
        se_gate: Literal["hsigmoid", "sigmoid"] = "hsigmoid",
        pw_act: bool = False,
        residual: bool = True,
        anti_alias: bool = False,
    ) -> None:
        super().__init__()
        self.dw = ConvBnAct(in_channels, in_channels, kernel, stride, groups=0, act=act, anti_alias=anti_alias)
        self.se = SqueezeExcite(in_channels, ratio=se, gate=se_gate) if se > 0 else nn.Identity()
        self.pw = ConvBnAct(in_channels, out, 1, act=act if pw_act else "none")
        self.has_residual = residual and stride == 1 and in_channels == out
        self.out_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.se(self.dw(x)))
        return y + x if self.has_residual else y
