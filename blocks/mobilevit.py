"""MobileViT block: local convolutions + global self-attention over unfolded patches
(Mehta & Rastegari, *MobileViT*, ICLR 2022).

    L = act(BN(W_k * x))                 local k×k conv                  N×C×H×W -> N×C×H×W
    L = W_1 · L                          1×1 to the transformer width d  -> N×d×H×W
    U = unfold_p(L)                      pixels at the same offset of every p×p patch form
                                         one sequence                    -> (N·p²)×(HW/p²)×d
    U = Transformer_depth(U)             pre-norm: U += MHSA(LN U); U += MLP(LN U)
    G = fold_p(LN(U))                                                    -> N×d×H×W
    y = act(BN(W_f * [x ; act(BN(W_p · G))]))   1×1 projection back to C_out, then a k×k
                                         fusion of the input with it     -> N×C_out×H×W

Inputs whose size is not a multiple of ``p`` are resized to the next multiple and back, as in
the reference implementation. Attention uses ``F.scaled_dot_product_attention``.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import Field

from .common import Activation, Channels, Kernel, make_activation
from .conv import ConvBnAct
from .registry import register_block

__all__ = ["MobileViTBlock", "TransformerLayer"]


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer: x += MHSA(LN x); x += MLP(LN x).   B×T×d -> B×T×d"""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, act: str) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), make_activation(act, inplace=False), nn.Linear(hidden, dim))

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q kᵀ / sqrt(d_h)) v
        return self.proj(out.transpose(1, 2).reshape(b, t, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attend(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@register_block("mobilevit", category="transformer")
class MobileViTBlock(nn.Module):
    """MobileViT block: local conv, unfold into patches, transformer layers, fold, fuse."""

    def __init__(
        self,
        in_channels: int,
        out: Channels | None = None,
        dim: Annotated[int, Field(ge=8, le=1024, description="transformer width d")] = 96,
        depth: Annotated[int, Field(ge=1, le=12, description="transformer layers")] = 2,
        heads: Annotated[int, Field(ge=1, le=16, description="attention heads (must divide dim)")] = 4,
        patch: Literal[1, 2, 4, 8] = 2,
        mlp_ratio: Annotated[float, Field(ge=1.0, le=8.0)] = 2.0,
        kernel: Kernel = 3,
        act: Activation = "swish",
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}; use a dim that is a multiple of heads")
        out = out or in_channels
        self.patch = patch
        self.local = ConvBnAct(in_channels, in_channels, kernel, act=act)
        self.to_tokens = nn.Conv2d(in_channels, dim, 1, bias=False)
        self.transformer = nn.Sequential(*[TransformerLayer(dim, heads, mlp_ratio, act) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.project = ConvBnAct(dim, out, 1, act=act)
        self.fuse = ConvBnAct(in_channels + out, out, kernel, act=act)
        self.out_channels = out

    def unfold(self, x: torch.Tensor) -> torch.Tensor:
        """N×d×H×W -> (N·p²)×(H/p·W/p)×d: one sequence per offset inside a patch."""
        n, d, h, w = x.shape
        p = self.patch
        x = x.reshape(n, d, h // p, p, w // p, p).permute(0, 3, 5, 2, 4, 1)
        return x.reshape(n * p * p, (h // p) * (w // p), d)

    def fold(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Inverse of ``unfold``: (N·p²)×(H/p·W/p)×d -> N×d×H×W."""
        p = self.patch
        d = x.shape[-1]
        x = x.reshape(-1, p, p, h // p, w // p, d).permute(0, 5, 3, 1, 4, 2)
        return x.reshape(-1, d, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        y = self.to_tokens(self.local(x))
        h, w = y.shape[-2:]
        ph, pw = math.ceil(h / self.patch) * self.patch, math.ceil(w / self.patch) * self.patch
        resized = (ph, pw) != (h, w)
        if resized:
            y = F.interpolate(y, size=(ph, pw), mode="bilinear", align_corners=False)
        y = self.fold(self.norm(self.transformer(self.unfold(y))), ph, pw)
        if resized:
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([shortcut, self.project(y)], dim=1))
