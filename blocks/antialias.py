"""Anti-aliased downsampling: blur before subsampling (Zhang, *Making Convolutional Networks
Shift-Invariant Again*, ICML 2019).

A strided layer samples its input without low-pass filtering, so small shifts of the input
change the output (aliasing). BlurPool first convolves every channel with a fixed binomial
filter ``b = outer(p, p) / sum(p)^2`` (``p = [1, 2, 1]`` or ``[1, 4, 6, 4, 1]``), reflect-padded,
and then keeps every ``stride``-th sample:

    y[c] = (pad(x[c]) * b)[::s, ::s]          N×C×H×W -> N×C×ceil(H/s)×ceil(W/s)

It has no learned parameters; it costs one depthwise k×k convolution.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import Stride
from .registry import register_block

__all__ = ["BlurPool"]

_BINOMIAL = {3: [1.0, 2.0, 1.0], 5: [1.0, 4.0, 6.0, 4.0, 1.0]}


@register_block("blurpool", category="downsample")
class BlurPool(nn.Module):
    """Anti-aliased downsampling: fixed binomial blur, then subsample (Zhang 2019)."""

    filt: torch.Tensor  # C×1×k×k normalised binomial kernel (a buffer: moves with .to(), not trained)

    def __init__(self, in_channels: int, filter_size: Literal[3, 5] = 3, stride: Stride = 2) -> None:
        super().__init__()
        # the normalised outer product from Python numbers (exact: every entry is an integer over a power of 2),
        # copied per channel by .contiguous(): on the meta device torch.outer imports torch._dynamo and a
        # format-preserving clone() sympy (seconds, the first time: the explorer's first page builds blocks on meta)
        taps = _BINOMIAL[filter_size]
        total = sum(taps) ** 2
        kernel = torch.tensor([[a * b / total for b in taps] for a in taps])
        self.register_buffer("filt", kernel.expand(in_channels, 1, filter_size, filter_size).contiguous())
        self.pad = filter_size // 2
        self.stride = stride
        self.channels = in_channels
        self.out_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return F.conv2d(x, self.filt, stride=self.stride, groups=self.channels)
