"""Classifier head: global pooling, optional hidden layer, dropout, linear.

    z = pool_hw(x)                                 N×C×H×W -> N×C
    z = act(W_h z + b_h)          (hidden > 0)     N×C -> N×hidden
    logits = W_o · dropout(z) + b_o                -> N×num_classes

A 1×1 convolution after global pooling (MobileNetV3's ``conv_head``) is the same map as the
hidden linear layer here: same parameters, same multiply-accumulates.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn as nn
from pydantic import Field

from .common import MAX_CHANNELS, Activation, make_activation
from .registry import register_block

__all__ = ["ClassifierHead"]


@register_block("classifier", category="head")
class ClassifierHead(nn.Module):
    """Global pool, optional hidden layer with activation, dropout, linear classifier."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        hidden: Annotated[int, Field(ge=0, le=MAX_CHANNELS, description="hidden width (0 = none)")] = 0,
        act: Activation = "hswish",
        dropout: Annotated[float, Field(ge=0.0, lt=1.0, description="dropout before the classifier")] = 0.2,
        pool: Literal["avg", "max"] = "avg",
    ) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1) if pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.flatten = nn.Flatten(1)
        if hidden > 0:
            self.hidden: nn.Module = nn.Sequential(nn.Linear(in_channels, hidden), make_activation(act))
            features = hidden
        else:
            self.hidden = nn.Identity()
            features = in_channels
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(features, num_classes)
        self.out_channels = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.hidden(self.flatten(self.pool(x)))))
