"""Attention condensers and double-condensing attention condensers (DC-AC).

Attention condensers (Wong et al., TinySpeech 2020; AttendNets 2020) are self-attention units
that learn a condensed joint spatial-channel embedding and use it to re-weight their input.
The double-condensing variant is the building block of AttendNeXt (Wong et al., *Faster
Attention Is What You Need*, arXiv 2208.06980, 2022). For V: N×C×H×W, with C_e the embedding
width and ``s`` the number of condensing steps:

    Q_1 = MaxPool_2x2(V)                         N×C×H/2×W/2      condensation
    K_1 = E_1(Q_1)                               N×C_e×H/2×W/2    embedding
    s = 2 (DC-AC), source "embedding":
        Q_2 = MaxPool_2x2(K_1)                   N×C_e×H/4×W/4    second condensation
        K_2 = E_2(Q_2)                           N×C_e×H/4×W/4    second embedding
    s = 2, source "expansion":
        Q_2 = MaxPool_2x2(P_1 · K_1)             N×C×H/4×W/4      (P_1: 1×1, C_e -> C)
        K_2 = E_2(Q_2)
    A = Upsample_{2^s}(P · K_s)                  N×C×H×W          expansion
    fusion "multiply": V' = V ⊙ σ(A) · S         selective attention, S a learned per-channel scale
    fusion "add":      V' = V · S + A
    optional: V' = BN(V')

Each embedding E is a grouped k×k convolution then a point-wise one, each followed by the
embedding activation (ReLU or leaky ReLU). With two steps the embedding runs at 1/16 of V's
area: a more condensed embedding at a lower cost. Pooling uses ``ceil_mode`` and the expansion
upsamples to V's exact size, so any input size works.

The papers leave these details open and public re-implementations disagree, so they are
parameters rather than a silent choice: ``fusion``, ``second_condense``, ``embed_act``,
``post_bn``. Input and output shapes are equal: N×C×H×W -> N×C×H×W.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import Field

from .common import Groups, Kernel, make_activation, make_divisible
from .registry import register_block

__all__ = ["AttentionCondenser"]

EmbedRatio = Annotated[
    float, Field(gt=0.0, le=1.0, description="embedding width C_e as a fraction of C (rounded to a multiple of 8)")
]


def _embedding(cin: int, cout: int, kernel: int, groups: int, act: str) -> nn.Sequential:
    g = math.gcd(cin, cout) if groups == 0 else groups
    if cin % g or cout % g:
        raise ValueError(
            f"embed_groups {g} must divide both {cin} and {cout} channels; use a common divisor, or 0 "
            f"for the most grouped choice ({math.gcd(cin, cout)})"
        )
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, 1, kernel // 2, groups=g),
        make_activation(act),
        nn.Conv2d(cout, cout, 1),
        make_activation(act),
    )


@register_block("attention_condenser", category="attention")
class AttentionCondenser(nn.Module):
    """Attention condenser: condense, embed, expand, re-weight (condense_steps=2 is DC-AC)."""

    def __init__(
        self,
        in_channels: int,
        condense_steps: Literal[1, 2] = 2,
        embed_ratio: EmbedRatio = 0.25,
        embed_kernel: Kernel = 3,
        embed_groups: Groups = 0,
        fusion: Literal["multiply", "add"] = "multiply",
        second_condense: Literal["embedding", "expansion"] = "embedding",
        embed_act: Literal["relu", "leaky_relu"] = "relu",
        post_bn: bool = False,
    ) -> None:
        super().__init__()
        channels = in_channels
        embed = min(channels, make_divisible(channels * embed_ratio, 8))
        self.condense_steps = condense_steps
        self.fusion = fusion
        self.second_condense = second_condense
        self.embed_channels = embed
        self.condense = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.embed1 = _embedding(channels, embed, embed_kernel, embed_groups, embed_act)
        self.expand1: nn.Module | None = None
        self.embed2: nn.Module | None = None
        if condense_steps == 2:
            if second_condense == "expansion":
                self.expand1 = nn.Conv2d(embed, channels, 1)
                self.embed2 = _embedding(channels, embed, embed_kernel, embed_groups, embed_act)
            else:
                self.embed2 = _embedding(embed, embed, embed_kernel, embed_groups, embed_act)
        self.expand = nn.Conv2d(embed, channels, 1)
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.norm = nn.BatchNorm2d(channels) if post_bn else nn.Identity()
        self.out_channels = channels

    def attention(self, v: torch.Tensor) -> torch.Tensor:
        """A = X(K_s): the expanded embedding, same shape as ``v``."""
        k = self.embed1(self.condense(v))
        if self.embed2 is not None:
            q = k if self.expand1 is None else self.expand1(k)
            k = self.embed2(self.condense(q))
        return F.interpolate(self.expand(k), size=v.shape[-2:], mode="nearest")

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        a = self.attention(v)
        if self.fusion == "multiply":
            out = v * torch.sigmoid(a) * self.scale
        else:
            out = v * self.scale + a
        return self.norm(out)
