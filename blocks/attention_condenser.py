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

Int8 deployment (ONNX Runtime static QDQ quantization; found with ``explorer latency SPEC
--profile --int8``, see ``explorer.latency.op_profile``). Three things made the unit slower in
int8 than in fp32: (1) the grouped embedding conv (e.g. 24 -> 8 channels in 8 groups of 3 -> 1)
runs through the generic grouped path of ``QLinearConv``, about 8x its fp32 time, the unit's
largest cost; (2) every elementwise op at full resolution (sigmoid, × S, BatchNorm) becomes a
separate kernel with a quantize/dequantize pair around it, and a full-resolution
``QuantizeLinear`` costs about as much as the whole fp32 gate; (3) the full-resolution nearest
``Resize`` runs on int8 data without ONNX Runtime's blocked-layout fast path. The choices:

- ``gate_at="condensed"`` (pure refactoring for ``fusion="multiply"``: nearest upsampling
  commutes with any per-element, per-channel function, so ``Up(σ(P·K))·S = Up(σ(P·K)·S)``):
  the gate σ and the scale S run on the condensed map (1/4^s of the area) before the upsampling;
  at full resolution only the upsampling and one multiply remain. Costs nothing; saves two
  full-resolution kernels (and their quantize/dequantize pairs in int8). No effect with
  ``fusion="add"`` (refused, to keep one meaning per setting).
- ``gate="hard_sigmoid"``: ``relu6(x + 3) / 6`` instead of σ. *Not* a refactoring (another
  function: train with it). Saves the transcendental; with ``gate_at="condensed"`` the gate is
  small already, so it mostly matters with ``gate_at="full"``.
- ``deploy_embed="depthwise"`` (pure refactoring, applied by ``reparameterize()``): a grouped
  embedding conv ``C_in -> C_out`` in ``g`` groups is deployed as a depth-wise k×k conv with
  channel multiplier ``m = C_out / g`` (the same ``C_out·C_in/g·k²`` learned weights, reordered)
  followed by a fixed 0/1 point-wise sum (a buffer, not a parameter) of each group's products.
  Costs ``C_in·m·C_out`` extra multiply-accumulates per condensed pixel (the sum, counted by the
  analysis); saves the slow grouped int8 path (and is faster in fp32 too, since ONNX Runtime
  runs depth-wise and point-wise convs in its blocked layout).
- the post-fusion BatchNorm is always folded by ``reparameterize()`` (exact in eval mode), into
  a 1×1 depth-wise conv ``x·a + b`` with ``a = γ/√(σ²+ε)``, ``b = β − μ·a`` (same 2C parameters).
  Left as a BatchNorm it stays an fp32 kernel between a dequantize and a quantize in int8; a
  per-channel add ``+ b`` (with ``a`` folded into S) would be an int8 ``QLinearAdd`` with
  broadcasting, measured slower still; a depth-wise 1×1 conv is a plain ``QLinearConv``. With
  ``fusion="add"``, ``a`` and ``b`` go into S and the expansion conv: nothing is left
  (2C fewer deployed parameters).

Measured (``python benchmarks/int8_condenser.py``, RESULTS.md): the speed-up in int8 of the
whole AttendNeXt preset with each choice.
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


class _DepthwiseSum(nn.Module):
    """A grouped k×k conv as ``m`` depth-wise k×k convs plus a fixed point-wise sum per group.

    ``conv``: C_in -> C_out in g groups (``p = C_in/g`` inputs and ``m = C_out/g`` outputs per group),
    weight C_out × p × k × k. Depth-wise conv ``r`` (r < m) convolves input channel ``i`` with
    ``W[o, i mod p]``, ``o = (i div p)·m + r``; output ``o`` sums the ``p`` products of its group
    (0/1 weights, a buffer). The same ``C_out·p·k²`` learned weights, reordered; ``m`` separate
    depth-wise convs (each with channel multiplier 1, the fast int8 path) rather than one with
    multiplier ``m`` (which ONNX Runtime runs through the slow grouped path again).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        cin, cout, g = conv.in_channels, conv.out_channels, conv.groups
        per, m = cin // g, cout // g
        kernel = (int(conv.kernel_size[0]), int(conv.kernel_size[1]))
        stride = (int(conv.stride[0]), int(conv.stride[1]))
        padding = conv.padding if isinstance(conv.padding, str) else (int(conv.padding[0]), int(conv.padding[1]))
        convs = [nn.Conv2d(cin, cin, kernel, stride, padding, groups=cin, bias=False) for _ in range(m)]
        total = torch.zeros(cout, cin * m, 1, 1)
        with torch.no_grad():
            for i in range(cin):
                j, t = divmod(i, per)
                for r in range(m):
                    o = j * m + r
                    convs[r].weight[i, 0] = conv.weight[o, t]
                    total[o, r * cin + i] = 1.0
        self.dws = nn.ModuleList(convs)
        self.total: torch.Tensor
        self.register_buffer("total", total)
        self.bias = nn.Parameter(conv.bias.detach().clone()) if conv.bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dws[0](x) if len(self.dws) == 1 else torch.cat([dw(x) for dw in self.dws], dim=1)
        return F.conv2d(y, self.total, self.bias)


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
        gate: Literal["sigmoid", "hard_sigmoid"] = "sigmoid",
        gate_at: Literal["full", "condensed"] = "full",
        deploy_embed: Literal["grouped", "depthwise"] = "grouped",
    ) -> None:
        super().__init__()
        if gate_at == "condensed" and fusion != "multiply":
            raise ValueError("gate_at 'condensed' applies to fusion 'multiply' (the gate); use gate_at 'full' "
                             "with fusion 'add'")
        channels = in_channels
        embed = min(channels, make_divisible(channels * embed_ratio, 8))
        self.condense_steps = condense_steps
        self.fusion = fusion
        self.second_condense = second_condense
        self.gate = gate
        self.gate_at = gate_at
        self.deploy_embed = deploy_embed
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
        self.norm: nn.Module = nn.BatchNorm2d(channels) if post_bn else nn.Identity()
        self.out_channels = channels

    def condensed(self, v: torch.Tensor) -> torch.Tensor:
        """P·K_s: the expanded embedding at the condensed resolution, N×C×H/2^s×W/2^s."""
        k = self.embed1(self.condense(v))
        if self.embed2 is not None:
            q = k if self.expand1 is None else self.expand1(k)
            k = self.embed2(self.condense(q))
        return self.expand(k)

    def attention(self, v: torch.Tensor) -> torch.Tensor:
        """A = X(K_s): the expanded embedding, same shape as ``v``."""
        return F.interpolate(self.condensed(v), size=v.shape[-2:], mode="nearest")

    def _gate(self, a: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(a) if self.gate == "sigmoid" else F.hardsigmoid(a)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if self.fusion == "add":
            out = v * self.scale + self.attention(v)
        elif self.gate_at == "condensed":
            out = v * F.interpolate(self._gate(self.condensed(v)) * self.scale, size=v.shape[-2:], mode="nearest")
        else:
            out = v * self._gate(self.attention(v)) * self.scale
        return self.norm(out)

    def reparameterize(self) -> None:
        """Fold for deployment (exact in eval mode): the post-fusion BatchNorm into a depth-wise 1×1 conv
        (into S and the expansion conv with ``fusion="add"``); with ``deploy_embed="depthwise"`` each
        grouped embedding conv into depth-wise convs plus a fixed sum. Idempotent."""
        if isinstance(self.norm, nn.BatchNorm2d):
            bn = self.norm
            assert bn.running_var is not None and bn.running_mean is not None  # track_running_stats: always here
            a = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            b = bn.bias.detach() - bn.running_mean * a
            with torch.no_grad():
                if self.fusion == "add":
                    self.scale.mul_(a.view(1, -1, 1, 1))
                    self.expand.weight.mul_(a.view(-1, 1, 1, 1))
                    bias = self.expand.bias if self.expand.bias is not None else torch.zeros_like(a)
                    self.expand.bias = nn.Parameter(bias * a + b)
                    self.norm = nn.Identity()
                else:
                    affine = nn.Conv2d(bn.num_features, bn.num_features, 1, groups=bn.num_features)
                    affine.weight.copy_(a.view(-1, 1, 1, 1))
                    assert affine.bias is not None
                    affine.bias.copy_(b)
                    self.norm = affine
        if self.deploy_embed == "depthwise":
            for embed in (self.embed1, self.embed2):
                if not isinstance(embed, nn.Sequential):
                    continue
                conv = embed[0]
                if isinstance(conv, nn.Conv2d) and 1 < conv.groups < conv.in_channels:
                    embed[0] = _DepthwiseSum(conv)
