"""Top-1 / top-5 accuracy of a network on an ImageFolder, with the standard ImageNet preprocessing.

``evaluate_folder(model, root)`` reads ``root/<class>/<image>`` (classes are the sorted sub-folder
names, so an ImageNet validation folder of synset folders gives timm's class indices), and for every
image, batched and streamed (never the whole set in memory):

1. resize so that the shorter side is ``round(S / crop_pct)`` (bicubic; S the network's input size,
   ``crop_pct`` 0.875: 256 for 224, timm's default),
2. centre-crop S×S,
3. scale to [0, 1] and normalise per channel: x̂_c = (x_c − μ_c) / σ_c with ImageNet's
   μ = (0.485, 0.456, 0.406), σ = (0.229, 0.224, 0.225).

top-k = (1/N) Σ_i [y_i ∈ the k largest logits of image i]. The folder is listed and images are
decoded by :mod:`explorer.data.folders` rules (only the formats of ``IMAGE_FORMATS``, size limits
checked before decoding, class folders that link out of the tree refused).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .data.folders import IMAGE_FORMATS, MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS, _class_tree

__all__ = ["CROP_PCT", "IMAGENET_MEAN", "IMAGENET_STD", "FolderEval", "evaluate_folder", "folder_batches",
           "list_folder", "load_eval_image"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_PCT = 0.875

Progress = Callable[[int, int], None]


@dataclass
class FolderEval:
    """What ``evaluate_folder`` returns (``explorer evaluate --json`` prints it)."""

    top1: float
    top5: float
    images: int
    classes: int
    input_size: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def list_folder(root: str | Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """``(files with labels, class names)`` of an ImageFolder; ``ValueError`` naming the fix if empty."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"no ImageFolder at {root}: give a folder of root/<class>/<image>")
    tree = _class_tree(root)
    classes = sorted(tree)
    if not classes:
        raise ValueError(f"{root}: no class folder with images; an ImageFolder is root/<class>/<image>")
    files = [(p, i) for i, c in enumerate(classes) for p in tree[c]]
    return files, classes


def load_eval_image(path: Path, size: int, crop_pct: float = CROP_PCT) -> np.ndarray:
    """One image -> 3×S×S float32, resized (shorter side ``round(S / crop_pct)``), centre-cropped, normalised."""
    from PIL import Image, UnidentifiedImageError

    if path.stat().st_size > MAX_IMAGE_FILE_BYTES:
        raise ValueError(f"{path}: larger than {MAX_IMAGE_FILE_BYTES >> 20} MiB; is it really an image?")
    try:
        with Image.open(path, formats=list(IMAGE_FORMATS)) as img:
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise ValueError(f"{path}: {w}×{h} pixels is over the {MAX_IMAGE_PIXELS // 1_000_000} MP limit")
            short = max(size, int(round(size / crop_pct)))
            scale = short / min(w, h)
            nw, nh = max(size, int(round(w * scale))), max(size, int(round(h * scale)))
            rgb = img.convert("RGB").resize((nw, nh), Image.Resampling.BICUBIC)
            left, top = (nw - size) // 2, (nh - size) // 2
            arr = np.asarray(rgb.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not a readable image in an accepted format ({', '.join(IMAGE_FORMATS)})") from None
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    return ((arr - mean) / std).transpose(2, 0, 1).copy()


def folder_batches(files: list[tuple[Path, int]], size: int, batch_size: int = 64,
                   crop_pct: float = CROP_PCT) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(N×3×S×S float32, N int64)`` batches of ``files`` in order, decoded as they are needed."""
    for i in range(0, len(files), batch_size):
        chunk = files[i:i + batch_size]
        x = np.stack([load_eval_image(p, size, crop_pct) for p, _ in chunk])
        yield x, np.asarray([label for _, label in chunk], dtype=np.int64)


@torch.inference_mode()
def evaluate_folder(model: nn.Module, root: str | Path, input_size: int, *, batch_size: int = 64,
                    crop_pct: float = CROP_PCT, limit: int | None = None, num_classes: int | None = None,
                    progress: Progress | None = None) -> FolderEval:
    """Top-1 and top-5 of ``model`` (N×3×S×S -> N×K logits) on the ImageFolder at ``root``.

    ``limit`` evaluates the first ``limit`` images of a seeded shuffle (seed 0) instead of all;
    ``progress(done, total)`` is called after every batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be at least 1")
    files, classes = list_folder(root)
    if num_classes is not None and len(classes) > num_classes:
        raise ValueError(f"{root}: {len(classes)} class folders, but the network has {num_classes} outputs; "
                         "give a folder of at most that many classes (in the network's class order)")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit {limit} must be at least 1")
        order = np.random.RandomState(0).permutation(len(files))[:limit]
        files = [files[j] for j in sorted(order)]
    was_training = model.training
    model.eval()
    top1 = top5 = 0
    done = 0
    for x, y in folder_batches(files, input_size, batch_size, crop_pct):
        logits = model(torch.from_numpy(x))
        k = min(5, logits.shape[1])
        best = logits.topk(k, dim=1).indices.numpy()
        top1 += int((best[:, 0] == y).sum())
        top5 += int((best == y[:, None]).any(axis=1).sum())
        done += len(y)
        if progress is not None:
            progress(done, len(files))
    model.train(was_training)
    return FolderEval(top1=top1 / done, top5=top5 / done, images=done, classes=len(classes), input_size=input_size)
