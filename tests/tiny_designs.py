"""The tiny design the training, proxy and store tests share (16×16 input, 10 classes).

A stem conv, a DC-AC unit and one downsampling unit: small enough to train in a second on a CPU,
and it holds the block this project is about.
"""

from __future__ import annotations

from typing import Any


def tiny_design(name: str = "tiny", width: int = 16, *, stem_stride: int = 1, act: str = "relu",
                last: dict[str, Any] | None = None) -> dict[str, Any]:
    """A spec mapping: conv(width) -> DC-AC -> ``last`` (default dwsep to 2·width, stride 2) -> classifier."""
    last = last if last is not None else {"type": "dwsep", "out": 2 * width, "stride": 2}
    return {
        "name": name,
        "input": {"channels": 3, "size": 16},
        "num_classes": 10,
        "stem": [{"type": "conv", "out": width, "kernel": 3, "stride": stem_stride, "act": act}],
        "stages": [{"name": "s1", "blocks": [{"type": "attention_condenser", "condense_steps": 2}, last]}],
        "head": {"type": "classifier"},
    }
