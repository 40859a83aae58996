"""MobileOne: train-time over-parameterised convolutions that fold into one at inference
(Vasu et al., *MobileOne: An Improved One millisecond Mobile Backbone*, CVPR 2023; the
re-parameterisation idea of RepVGG, Ding et al. 2021).

RepConv, one re-parameterisable unit, sums parallel branches that are all linear until the
activation:

    y = act( Σ_i BN_i(W_i * x)  +  BN_s(W_s · x)  +  BN_id(x) )
        k branches k×k conv     1×1 "scale" conv   identity (when C_in = C_out, s = 1)

Because convolution and inference-mode batch norm are both affine, every branch is an affine
map ``x -> K * x + b``: BN folds into its convolution (``K' = K·γ/σ``, ``b' = β - μ·γ/σ``),
the 1×1 kernel is zero-padded to k×k, and the identity is a k×k kernel with a single 1 at
the centre. Summing kernels and biases gives one k×k convolution with identical outputs:
``reparameterize()`` does this in place.

The MobileOne block of the paper is a depthwise k×k RepConv followed by a point-wise 1×1
RepConv, N×C_in×H×W -> N×C_out×H'×W'.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn as nn
from pydantic import Field

from .common import Activation, Channels, Groups, Kernel, Stride, make_activation
from .conv import resolve_groups
from .registry import register_block

__all__ = ["RepConv", "MobileOneBlock", "fuse_conv_bn"]

Branches = Annotated[int, Field(ge=1, le=8, description="number of parallel k×k train-time branches")]


def fuse_conv_bn(kernel: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold inference-mode BN into a bias-free conv kernel: returns (K·γ/σ, β - μ·γ/σ).

    ``kernel`` is ``C_out×C_in/g×k×k``; σ = sqrt(running_var + eps), per output channel.
    """
    if bn.running_var is None or bn.running_mean is None:
        raise ValueError("fuse_conv_bn: the BatchNorm keeps no running statistics; use track_running_stats=True")
    std = (bn.running_var + bn.eps).sqrt()
    scale = bn.weight / std
    return kernel * scale.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * scale


def _fuse_branch(branch: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(kernel, bias) of one conv → BN branch made by ``_conv_bn``."""
    conv, bn = branch.children()
    assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    return fuse_conv_bn(conv.weight, bn)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    )


@register_block("repconv", category="conv")
class RepConv(nn.Module):
    """Re-parameterisable conv: k×k branches + 1×1 scale + identity BN, fused for inference."""

    def __init__(
        self,
        in_channels: int,
        out: Channels,
        kernel: Kernel = 3,
        stride: Stride = 1,
        groups: Groups = 1,
        branches: Branches = 1,
        act: Activation = "relu",
    ) -> None:
        super().__init__()
        g = resolve_groups(groups, in_channels, out)
        self.in_channels, self.out_channels = in_channels, out
        self.kernel, self.stride, self.groups = kernel, stride, g
        self.conv_branches = nn.ModuleList(_conv_bn(in_channels, out, kernel, stride, g) for _ in range(branches))
        self.scale = _conv_bn(in_channels, out, 1, stride, g) if kernel > 1 else None
        self.identity = nn.BatchNorm2d(out) if in_channels == out and stride == 1 else None
        self.fused: nn.Conv2d | None = None
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.act(self.fused(x))
        y = sum(branch(x) for branch in self.conv_branches)
        if self.scale is not None:
            y = y + self.scale(x)
        if self.identity is not None:
            y = y + self.identity(x)
        return self.act(y)

    def _identity_kernel(self) -> torch.Tensor:
        per_group = self.in_channels // self.groups
        kernel = torch.zeros(self.out_channels, per_group, self.kernel, self.kernel)
        centre = self.kernel // 2
        for c in range(self.out_channels):
            kernel[c, c % per_group, centre, centre] = 1.0
        return kernel.to(self.identity.weight)  # type: ignore[union-attr]

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold all branches into ``self.fused`` (one k×k conv with bias); idempotent."""
        if self.fused is not None:
            return
        pad = self.kernel // 2
        parts = [_fuse_branch(branch) for branch in self.conv_branches]
        if self.scale is not None:
            k, b = _fuse_branch(self.scale)
            parts.append((nn.functional.pad(k, (pad,) * 4), b))  # the 1×1 kernel sits at the k×k centre
        if self.identity is not None:
            parts.append(fuse_conv_bn(self._identity_kernel(), self.identity))
        kernel, bias = parts[0]
        for k, b in parts[1:]:
            kernel, bias = kernel + k, bias + b
        fused = nn.Conv2d(
            self.in_channels, self.out_channels, self.kernel, self.stride, pad, groups=self.groups, bias=True
        ).to(kernel)
        assert fused.bias is not None  # made with bias=True
        fused.weight.copy_(kernel)
        fused.bias.copy_(bias)
        self.fused = fused
        del self.conv_branches, self.scale, self.identity
        self.conv_branches, self.scale, self.identity = nn.ModuleList(), None, None


@register_block("mobileone", category="conv")
class MobileOneBlock(nn.Module):
    """MobileOne block: depthwise k×k RepConv then point-wise 1×1 RepConv."""

    def __init__(
        self,
        in_channels: int,
        out: Channels,
        kernel: Kernel = 3,
        stride: Stride = 1,
        branches: Branches = 1,
        act: Activation = "relu",
    ) -> None:
        super().__init__()
        self.dw = RepConv(in_channels, in_channels, kernel, stride, groups=0, branches=branches, act=act)
        self.pw = RepConv(in_channels, out, 1, 1, groups=1, branches=branches, act=act)
        self.out_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))

    def reparameterize(self) -> None:
        """Fuse both units (see ``RepConv.reparameterize``)."""
        self.dw.reparameterize()
        self.pw.reparameterize()
