"""Shared parameter types and small helpers for the blocks.

The ``Annotated`` aliases carry the validation rules (ranges, odd kernels, choices) so that
a block's signature is its schema: ``kernel: Kernel = 3`` both documents and validates.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch.nn as nn
from pydantic import AfterValidator, Field

__all__ = [
    "Activation",
    "Channels",
    "Groups",
    "Kernel",
    "Stride",
    "Ratio",
    "MAX_CHANNELS",
    "make_activation",
    "make_divisible",
]

MAX_CHANNELS = 4096


#: the largest kernel a block takes; every odd size from 1 to this is allowed
MAX_KERNEL = 11
#: the allowed kernel sizes in words, as every even-kernel message lists them: "1, 3, 5, 7, 9 or 11"
KERNEL_CHOICES = ", ".join(str(k) for k in range(1, MAX_KERNEL - 1, 2)) + f" or {MAX_KERNEL}"


def _odd_kernel(k: int) -> int:
    if k % 2 == 0:
        raise ValueError(f"kernel {k} is even; use {KERNEL_CHOICES}")
    return k


Channels = Annotated[
    int, Field(ge=1, le=MAX_CHANNELS, description=f"output channels (1 to {MAX_CHANNELS})")
]
Kernel = Annotated[
    int, Field(ge=1, le=MAX_KERNEL, description=f"kernel size (odd, 1 to {MAX_KERNEL})"), AfterValidator(_odd_kernel)
]
Stride = Annotated[int, Field(ge=1, le=2, description="stride (1 keeps the resolution, 2 halves it)")]
Groups = Annotated[
    int,
    Field(ge=0, le=MAX_CHANNELS, description="1 = dense, g = grouped, 0 = depthwise (one group per channel)"),
]
Ratio = Annotated[float, Field(ge=0.0, le=1.0, description="ratio between 0 and 1")]
Activation = Literal["relu", "relu6", "hswish", "swish", "gelu", "none"]


def make_activation(name: str, inplace: bool = True) -> nn.Module:
    """Activation module by name (``none`` gives ``nn.Identity``)."""
    factories = {
        "relu": lambda: nn.ReLU(inplace=inplace),
        "relu6": lambda: nn.ReLU6(inplace=inplace),
        "hswish": lambda: nn.Hardswish(inplace=inplace),
        "swish": lambda: nn.SiLU(inplace=inplace),
        "gelu": nn.GELU,
        "leaky_relu": lambda: nn.LeakyReLU(0.1, inplace=inplace),
        "sigmoid": nn.Sigmoid,
        "hsigmoid": lambda: nn.Hardsigmoid(inplace=inplace),
        "none": nn.Identity,
    }
    try:
        return factories[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; use one of {', '.join(factories)}") from None


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """Round ``value`` to a multiple of ``divisor`` without going below 90 % of it.

    The MobileNet rule: ``max(divisor, int(value + divisor / 2) // divisor * divisor)``, bumped
    up by one ``divisor`` if rounding lost more than 10 %.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < round_limit * value:
        rounded += divisor
    return rounded
