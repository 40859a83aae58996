"""scikit-learn's bundled handwritten digits (UCI optdigits test set): 1,797 8×8 images, 10 classes.

The images (grey levels 0..16) are scaled to [0, 1], resized bilinearly to S×S, repeated to 3
channels and normalised. The split is fixed: a stratified 80 / 20 split drawn once with seed 0,
so every run of every design is judged on the same 359 validation images. Flips are not label
preserving for digits (a mirrored 2 is no 2), so ``flip_ok`` is False.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .common import DataSplit, check_budget, finish_split, resize_images

__all__ = ["DIGITS_SPLIT_SEED", "VAL_FRACTION", "load_digits_split"]

DIGITS_SPLIT_SEED = 0
VAL_FRACTION = 0.2


def _stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): ``fraction`` of each class goes to val; both shuffled."""
    rng = np.random.RandomState(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(fraction * len(idx)))
        val.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(val))


@lru_cache(maxsize=4)
def _digits_cached(input_size: int) -> DataSplit:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0  # N×8×8 in [0, 1]
    labels = np.asarray(bunch.target, dtype=np.int64)
    check_budget(len(labels), input_size, what="digits")
    tr, va = _stratified_split(labels, VAL_FRACTION, DIGITS_SPLIT_SEED)
    x = resize_images(torch.from_numpy(images).unsqueeze(1), input_size).clamp_(0, 1).repeat(1, 3, 1, 1)
    y = torch.from_numpy(labels)
    return finish_split("digits", x[tr], y[tr], x[va], y[va], [str(d) for d in range(10)], flip_ok=False)


def load_digits_split(input_size: int = 32) -> DataSplit:
    """The digits at ``input_size``² (1,438 train / 359 val, fixed)."""
    return _digits_cached(int(input_size))
