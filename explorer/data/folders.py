"""Real images from disk: an ImageFolder tree and CIFAR-10's python batches.

ImageFolder: ``root/<class>/<image>`` (PNG, JPEG, BMP, GIF, WebP, PPM, TIFF), read with Pillow,
converted to RGB and resized to S×S. With ``root/train/<class>/…`` and ``root/val/<class>/…``
(or ``test/``) those splits are used; otherwise a stratified 80 / 20 split is drawn from ``seed``.

CIFAR-10 (python version): ``data_batch_1`` … ``data_batch_5`` train, ``test_batch`` validates,
``batches.meta`` names the classes. The batches are pickles, and a pickle can run any code while it
loads, so they are read with :func:`safe_unpickle`: an unpickler that can build dicts, lists,
bytes, strings, numbers and plain numpy arrays, and refuses every other global with an error.

Every size is checked before it is allocated: files are counted and bounded first, images larger
than :data:`MAX_IMAGE_PIXELS` are refused before they are decoded.
"""

from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .common import DataSplit, check_budget, finish_split, resize_images

__all__ = ["CIFAR10_CLASSES", "IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS", "load_cifar10_dir", "load_image_folder",
           "safe_unpickle"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")
MAX_IMAGE_PIXELS = 40_000_000  # one decoded image: 40 MP (Pillow's own bomb guard is 179 MP)
MAX_IMAGE_FILE_BYTES = 64 << 20
MAX_BATCH_FILE_BYTES = 256 << 20  # a real CIFAR-10 batch is 31 MB
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ----------------------------------------------------------------------------- safe unpickling


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("refused: only plain numpy arrays may be rebuilt")
    if np.dtype(dtype).hasobject:
        raise pickle.UnpicklingError("refused: numpy arrays of Python objects are not data")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _dtype(*args: Any) -> np.dtype:
    dt = np.dtype(*args)
    if dt.hasobject:
        raise pickle.UnpicklingError("refused: numpy arrays of Python objects are not data")
    return dt


def _encode(text: str, encoding: str = "utf-8") -> bytes:  # how protocol 2 writes bytes under Python 3
    if codecs.lookup(encoding).name not in ("latin-1", "iso8859-1", "utf-8"):
        raise pickle.UnpicklingError(f"refused: text encoding {encoding!r}")
    return text.encode(encoding)


_ALLOWED: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only dicts, lists, tuples, bytes, str, numbers and plain numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: this file may only hold numbers, text, lists, dicts and numpy arrays"
            ) from None


def safe_unpickle(path: str | Path, max_bytes: int = MAX_BATCH_FILE_BYTES) -> Any:
    """Load a pickle that may only hold plain data (see the module docstring); ``ValueError`` otherwise.

    Python 2 strings come back as ``bytes`` (``encoding='bytes'``), as CIFAR-10's own reader expects.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{path.name} is {size / 2**20:.0f} MiB; a data batch is at most {max_bytes >> 20} MiB")
    try:
        return _RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, MemoryError) as exc:
        raise ValueError(f"{path.name} is not a readable data pickle ({type(exc).__name__}: {exc})") from None


# ----------------------------------------------------------------------------- CIFAR-10


def _field(batch: Any, key: str, path: Path) -> Any:
    if not isinstance(batch, dict):
        raise ValueError(f"{path.name}: expected a dict of data and labels, found {type(batch).__name__}")
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise ValueError(f"{path.name}: no {key!r} entry; is this a CIFAR-10 python batch?")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = safe_unpickle(path)
    data, labels = _field(batch, "data", path), _field(batch, "labels", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path.name}: 'data' must be a uint8 array of N×3072 pixels")
    labels = np.asarray(labels)
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(f"{path.name}: 'labels' must be {data.shape[0]} whole numbers")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_cifar10_dir(path: str | Path, input_size: int = 32, max_train: int | None = None,
                     max_val: int | None = None) -> DataSplit:
    """CIFAR-10 python batches -> ``DataSplit`` (train: data_batch_*, val: test_batch)."""
    root = Path(path)
    train_files = sorted(root.glob("data_batch_[1-9]"))
    if not train_files:
        raise FileNotFoundError(f"{root}: no data_batch_1 … data_batch_5 files")
    if not (root / "test_batch").is_file():
        raise FileNotFoundError(f"{root}: no test_batch file to validate on")
    classes = CIFAR10_CLASSES
    if (root / "batches.meta").is_file():
        names = _field(safe_unpickle(root / "batches.meta", max_bytes=1 << 20), "label_names", root / "batches.meta")
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    xs, ys = zip(*(_read_batch(f) for f in train_files))
    train_x, train_y = np.concatenate(xs), np.concatenate(ys)
    val_x, val_y = _read_batch(root / "test_batch")
    train_x, train_y = train_x[:max_train], train_y[:max_train]
    val_x, val_y = val_x[:max_val], val_y[:max_val]
    check_budget(len(train_y) + len(val_y), max(input_size, 32), what=f"{root.name}")
    to_float = lambda a: resize_images(torch.from_numpy(a).float().div_(255), input_size).clamp_(0, 1)  # noqa: E731
    return finish_split(f"cifar10:{root.name}", to_float(train_x), torch.from_numpy(train_y), to_float(val_x),
                        torch.from_numpy(val_y), classes, flip_ok=True)


# ----------------------------------------------------------------------------- ImageFolder


def _class_tree(root: Path) -> dict[str, list[Path]]:
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    tree = {d.name: sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            for d in classes}
    return {name: files for name, files in tree.items() if files}


def _read_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if path.stat().st_size > MAX_IMAGE_FILE_BYTES:
        raise ValueError(f"{path}: larger than {MAX_IMAGE_FILE_BYTES >> 20} MiB; is it really an image?")
    try:
        with Image.open(path) as img:
            w, h = img.size  # read from the header, nothing decoded yet
            if w * h > MAX_IMAGE_PIXELS:
                raise ValueError(f"{path}: {w}×{h} pixels is over the {MAX_IMAGE_PIXELS // 1_000_000} MP limit")
            rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None


def _load_files(files: list[tuple[Path, int]], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = np.empty((len(files), 3, size, size), dtype=np.uint8)
    for i, (p, _label) in enumerate(files):
        x[i] = _read_image(p, size)
    y = np.array([label for _p, label in files], dtype=np.int64)
    return torch.from_numpy(x).float().div_(255), torch.from_numpy(y)


def load_image_folder(path: str | Path, input_size: int = 32, seed: int = 0, val_fraction: float = 0.2,
                      max_train: int | None = None, max_val: int | None = None) -> DataSplit:
    """An ImageFolder tree -> ``DataSplit`` (classes are the sorted sub-folder names)."""
    root = Path(path)
    split_dirs = [root / "train", next((root / d for d in ("val", "test") if (root / d).is_dir()), None)]
    rng = np.random.RandomState(seed)
    if split_dirs[0].is_dir() and split_dirs[1] is not None:
        train_tree, val_tree = _class_tree(split_dirs[0]), _class_tree(split_dirs[1])
        classes = sorted(set(train_tree) | set(val_tree))
        index = {c: i for i, c in enumerate(classes)}
        train = [(p, index[c]) for c, files in train_tree.items() for p in files]
        val = [(p, index[c]) for c, files in val_tree.items() for p in files]
    else:
        tree = _class_tree(root)
        classes = sorted(tree)
        train, val = [], []
        for i, c in enumerate(classes):
            files = [tree[c][j] for j in rng.permutation(len(tree[c]))]
            k = max(1, int(round(val_fraction * len(files)))) if len(files) > 1 else 0
            val += [(p, i) for p in files[:k]]
            train += [(p, i) for p in files[k:]]
    if len(classes) < 2:
        raise ValueError(f"{root}: found {len(classes)} class folder(s) with images; an ImageFolder needs "
                         "root/<class>/<image> with at least 2 classes")
    train = [train[j] for j in rng.permutation(len(train))][:max_train]
    val = [val[j] for j in rng.permutation(len(val))][:max_val]
    check_budget(len(train) + len(val), input_size, what=root.name)
    train_x, train_y = _load_files(train, input_size)
    val_x, val_y = _load_files(val, input_size)
    return finish_split(f"folder:{root.name}", train_x, train_y, val_x, val_y, classes, flip_ok=True)
