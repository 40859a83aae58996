"""A procedural 10-class image set: shapes, textures, noise and colour, deterministic from a seed.

Each image is a mask m ∈ [0, 1]^{S×S} painted between two random colours and then noised:

    x = b · (1 − m) + f · m + ε,   b, f ∈ [0, 1]³ (|f − b| large enough to see),  ε ~ N(0, σ²), σ ~ U(0.02, 0.12)

The class decides the mask; position, size, period and phase are random per image:

====  ==============  ===========================================================
  0   disk            ‖p − c‖ ≤ r
  1   square          ‖p − c‖_∞ ≤ r
  2   triangle        upright isosceles triangle centred at c
  3   cross           a plus sign: two bars of width r/2
  4   ring            r/2 ≤ ‖p − c‖ ≤ r
  5   h-stripes       sin(2π y / T + φ) > 0
  6   v-stripes       sin(2π x / T + φ) > 0
  7   checkerboard    ⌊x / T⌋ + ⌊y / T⌋ odd
  8   noise           random binary blocks of 1 or 2 pixels
  9   gradient        a smooth top-to-bottom ramp between the two colours
====  ==============  ===========================================================

Every class is symmetric under a horizontal flip, so flips are label preserving. Generated with
numpy's ``RandomState(seed)``: the same seed gives the same images on every machine.
"""

from __future__ import annotations

import numpy as np
import torch

from .common import DataSplit, check_budget, finish_split

__all__ = ["SHAPE_CLASSES", "make_shapes", "shape_images"]

SHAPE_CLASSES = ["disk", "square", "triangle", "cross", "ring", "h-stripes", "v-stripes", "checkerboard",
                 "noise", "gradient"]


def _masks(label: int, n: int, size: int, rng: np.random.RandomState) -> np.ndarray:
    """n masks (n×S×S, float32 in [0, 1]) of one class."""
    s = float(size)
    yy, xx = np.meshgrid(np.arange(size, dtype=np.float32) + 0.5, np.arange(size, dtype=np.float32) + 0.5,
                         indexing="ij")
    yy, xx = yy[None], xx[None]
    u = lambda lo, hi: rng.uniform(lo, hi, size=(n, 1, 1)).astype(np.float32)  # noqa: E731
    if label <= 4:
        cx, cy = u(0.35, 0.65) * s, u(0.35, 0.65) * s
        r = u(0.16, 0.32) * s
        dx, dy = xx - cx, yy - cy
        if label == 0:
            m = np.hypot(dx, dy) <= r
        elif label == 1:
            m = np.maximum(np.abs(dx), np.abs(dy)) <= r
        elif label == 2:  # apex at (cx, cy − r), base at y = cy + r, half-width r at the base
            t = (dy + r) / (2 * r)
            m = (t >= 0) & (t <= 1) & (np.abs(dx) <= t * r)
        elif label == 3:
            w = r / 2
            m = ((np.abs(dx) <= w / 2) & (np.abs(dy) <= r)) | ((np.abs(dy) <= w / 2) & (np.abs(dx) <= r))
        else:
            d = np.hypot(dx, dy)
            m = (d <= r) & (d >= r / 2)
        return m.astype(np.float32)
    period = u(max(2.5, s / 10), max(4.0, s / 4))
    phase = u(0, 2 * np.pi)
    if label == 5:
        return (np.sin(2 * np.pi * yy / period + phase) > 0).astype(np.float32)
    if label == 6:
        return (np.sin(2 * np.pi * xx / period + phase) > 0).astype(np.float32)
    if label == 7:
        off = u(0, 1) * period
        return ((np.floor((xx + off) / period) + np.floor((yy + off) / period)) % 2).astype(np.float32)
    if label == 8:
        cell = rng.randint(1, 3, size=n)
        out = np.empty((n, size, size), dtype=np.float32)
        for i, c in enumerate(cell):
            k = -(-size // c)
            block = rng.randint(0, 2, size=(k, k)).astype(np.float32)
            out[i] = np.kron(block, np.ones((c, c), dtype=np.float32))[:size, :size]
        return out
    lo, hi = u(0.0, 0.3), u(0.7, 1.0)
    return np.clip((yy / s - lo) / (hi - lo), 0, 1).astype(np.float32)


def shape_images(labels: np.ndarray, size: int, rng: np.random.RandomState) -> np.ndarray:
    """Images (N×3×S×S float32 in [0, 1]) for the given labels."""
    n = len(labels)
    out = np.empty((n, 3, size, size), dtype=np.float32)
    for label in range(len(SHAPE_CLASSES)):
        idx = np.flatnonzero(labels == label)
        if len(idx) == 0:
            continue
        m = _masks(label, len(idx), size, rng)[:, None]
        back = rng.uniform(0, 1, size=(len(idx), 3, 1, 1)).astype(np.float32)
        # the foreground differs from the background by at least 0.35 in mean over the channels
        delta = rng.uniform(0.35, 0.8, size=(len(idx), 1, 1, 1)) * rng.choice([-1.0, 1.0], size=(len(idx), 1, 1, 1))
        tint = rng.uniform(-0.25, 0.25, size=(len(idx), 3, 1, 1))
        fore = np.clip(back + delta + tint, 0, 1).astype(np.float32)
        flat = np.abs(fore - back).mean(axis=(1, 2, 3)) < 0.2  # clipped too close: use the complement
        fore[flat] = 1.0 - back[flat]
        sigma = rng.uniform(0.02, 0.12, size=(len(idx), 1, 1, 1)).astype(np.float32)
        noise = rng.standard_normal(size=(len(idx), 3, size, size)).astype(np.float32) * sigma
        out[idx] = np.clip(back * (1 - m) + fore * m + noise, 0, 1)
    return out


def make_shapes(n_train: int = 5000, n_val: int = 1000, input_size: int = 32, seed: int = 0) -> DataSplit:
    """The shapes set: ``n_train`` + ``n_val`` balanced, shuffled images at ``input_size``²."""
    for what, n in (("n_train", n_train), ("n_val", n_val)):
        if not isinstance(n, int) or n < 10:
            raise ValueError(f"shapes: {what} {n!r} is too small; use at least 10 (one per class)")
    check_budget(n_train + n_val, input_size, what="shapes")
    rng = np.random.RandomState(seed)
    labels = rng.permutation(np.arange(n_train + n_val) % len(SHAPE_CLASSES))
    x = torch.from_numpy(shape_images(labels, input_size, rng))
    y = torch.from_numpy(labels.astype(np.int64))
    return finish_split("shapes", x[:n_train], y[:n_train], x[n_train:], y[n_train:], SHAPE_CLASSES, flip_ok=True)
