"""What every data source returns, and the shared helpers (resize, normalise, size budget)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = ["MAX_IMAGES", "MAX_TENSOR_BYTES", "DataSplit", "check_budget", "finish_split", "resize_images"]

#: the most images one split may hold, and the most bytes of float32 pixels in memory for both
MAX_IMAGES = 200_000
MAX_TENSOR_BYTES = 1 << 30  # 1 GiB: 250 k images at 3×32×32, or 5 k at 3×224×224


def check_budget(n_images: int, input_size: int, channels: int = 3, what: str = "the dataset") -> None:
    """Refuse, before allocating, a set whose float32 tensor would pass :data:`MAX_TENSOR_BYTES`.

    bytes = n_images · channels · input_size² · 4
    """
    if n_images > MAX_IMAGES:
        raise ValueError(f"{what} has {n_images:,} images; the limit is {MAX_IMAGES:,}: use fewer")
    need = n_images * channels * input_size * input_size * 4
    if need > MAX_TENSOR_BYTES:
        raise ValueError(
            f"{what} would take {need / 2**30:.2f} GiB at {input_size}×{input_size} "
            f"(limit {MAX_TENSOR_BYTES / 2**30:.0f} GiB); use a smaller input size or fewer images"
        )


@dataclass
class DataSplit:
    """Train and validation tensors in memory.

    ``train_x``: N×3×S×S float32, normalised per channel: x̂ = (x − μ_c) / σ_c with μ, σ of the
    training pixels; ``train_y``: N int64 in [0, num_classes). ``flip_ok`` says whether a
    horizontal flip keeps every label (training augmentation uses it).
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    classes: list[str]
    flip_ok: bool = True
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_size(self) -> int:
        return int(self.train_x.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    def limited(self, n_train: int | None = None, n_val: int | None = None) -> DataSplit:
        """The first ``n_train`` / ``n_val`` examples (both splits are already shuffled)."""
        if n_train is None and n_val is None:
            return self
        tr = slice(None, n_train)
        va = slice(None, n_val)
        return DataSplit(self.name, self.train_x[tr], self.train_y[tr], self.val_x[va], self.val_y[va],
                         self.classes, self.flip_ok, self.mean, self.std)

    def describe(self) -> str:
        return (f"{self.name}: {len(self.train_y):,} train / {len(self.val_y):,} val images, "
                f"{self.channels}×{self.input_size}×{self.input_size}, {self.num_classes} classes")


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """N×C×h×w float -> N×C×size×size (bilinear, antialiased when shrinking)."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    shrink = size < min(x.shape[-2:])
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


def finish_split(
    name: str,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    classes: list[str],
    flip_ok: bool = True,
) -> DataSplit:
    """Normalise both splits with the training set's per-channel statistics; check the labels."""
    if len(train_y) == 0 or len(val_y) == 0:
        raise ValueError(f"{name}: the {'training' if len(train_y) == 0 else 'validation'} split is empty")
    for y in (train_y, val_y):
        if int(y.min()) < 0 or int(y.max()) >= len(classes):
            raise ValueError(f"{name}: labels must lie in 0..{len(classes) - 1}")
    mean = train_x.mean(dim=(0, 2, 3), keepdim=True)
    std = train_x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    train_x = ((train_x - mean) / std).contiguous()
    val_x = ((val_x - mean) / std).contiguous()
    return DataSplit(name, train_x.float(), train_y.long(), val_x.float(), val_y.long(), list(classes), flip_ok,
                     mean.flatten().tolist(), std.flatten().tolist())
