"""Real images from disk: an ImageFolder tree and CIFAR-10's python batches.

ImageFolder: ``root/<class>/<image>`` (PNG, JPEG, BMP, GIF, WebP, PPM, TIFF), read with Pillow,
converted to RGB and resized to S×S. With ``root/train/<class>/…`` and ``root/val/<class>/…``
(or ``test/``) those splits are used; otherwise a stratified 80 / 20 split is drawn from ``seed``.
Pillow is only ever asked for the formats in :data:`IMAGE_FORMATS`, whatever a file is named or
holds (an EPS file named ``x.png`` never reaches Pillow's EPS reader, which would run Ghostscript).
A class folder may be a symbolic link to a folder inside the tree; a link out of the tree, a loop,
or two class folders that are the same folder (or one inside the other) are refused, as are
``train/`` and ``val/`` splits that are the same folder.

CIFAR-10 (python version): ``data_batch_1`` … ``data_batch_5`` train, ``test_batch`` validates,
``batches.meta`` names the classes. The batches are pickles, and a pickle can run any code while it
loads, so they are read with :func:`safe_unpickle`: an unpickler that can build dicts, lists,
bytes, strings, numbers and plain numpy arrays, and refuses every other global with an error.
Its opcodes are counted before it runs (:data:`MAX_PICKLE_OPS`) and an array may not be larger than
the file, so a small file cannot build a huge object. What it returns is then checked field by field
(types, lengths, label range, pixel shape), each failure one line naming the file.

Every size is checked before it is allocated: files are counted and bounded first, images larger
than :data:`MAX_IMAGE_PIXELS` are refused before they are decoded.
"""

from __future__ import annotations

import codecs
import io
import math
import pickle
import pickletools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .common import DataSplit, check_budget, finish_split, resize_images

__all__ = ["CIFAR10_CLASSES", "IMAGE_FORMATS", "IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS", "load_cifar10_dir",
           "load_image_folder", "safe_unpickle"]

#: the only formats Pillow is asked to decode (its format names) and the file names they go by. Chosen as
#: the raster formats datasets are shipped in; left out on purpose: EPS and PDF (Ghostscript), PSD, ICO,
#: ICNS, SGI, TGA, DDS and Pillow's other readers, which no image dataset needs.
IMAGE_FORMATS: dict[str, tuple[str, ...]] = {
    "PNG": (".png",),
    "JPEG": (".jpg", ".jpeg"),
    "BMP": (".bmp",),
    "GIF": (".gif",),
    "WEBP": (".webp",),
    "PPM": (".ppm",),
    "TIFF": (".tif", ".tiff"),
}
IMAGE_SUFFIXES = tuple(suffix for suffixes in IMAGE_FORMATS.values() for suffix in suffixes)
MAX_IMAGE_PIXELS = 40_000_000  # one decoded image: 40 MP (Pillow's own bomb guard is 179 MP)
MAX_IMAGE_FILE_BYTES = 64 << 20
MAX_BATCH_FILE_BYTES = 256 << 20  # a real CIFAR-10 batch is 31 MB
MAX_PICKLE_OPS = 2_000_000  # a real CIFAR-10 batch is about 30 k opcodes (90 k written by Python 3 at protocol 2)
MAX_CLASSES = 1000
MAX_CLASS_NAME = 100
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ----------------------------------------------------------------------------- safe unpickling


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("refused: only plain numpy arrays may be rebuilt")
    dt = _dtype(dtype)
    dims = shape if isinstance(shape, tuple) else (shape,)
    if not all(type(n) is int and n >= 0 for n in dims):
        raise pickle.UnpicklingError(f"refused: array shape {shape!r} is not a tuple of sizes")
    if math.prod(dims) * dt.itemsize > MAX_BATCH_FILE_BYTES:
        raise pickle.UnpicklingError(f"refused: an array of shape {shape!r} is larger than a data file may be")
    return np.ndarray.__new__(np.ndarray, dims, dt)


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
    raw = path.read_bytes()
    try:
        for count, _op in enumerate(pickletools.genops(raw), start=1):
            if count > MAX_PICKLE_OPS:
                raise pickle.UnpicklingError(f"refused: more than {MAX_PICKLE_OPS:,} pickle opcodes; a data batch "
                                             "has far fewer")
        return _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
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


def _label_names(path: Path) -> list[str]:
    """``batches.meta``'s ``label_names``: a list of 2 … :data:`MAX_CLASSES` distinct, printable names."""
    names = _field(safe_unpickle(path, max_bytes=1 << 20), "label_names", path)
    if not isinstance(names, (list, tuple)):
        raise ValueError(f"{path.name}: 'label_names' must be a list of class names, found {type(names).__name__}")
    if not 2 <= len(names) <= MAX_CLASSES:
        raise ValueError(f"{path.name}: 'label_names' holds {len(names)} names; use 2 to {MAX_CLASSES}")
    out: list[str] = []
    for i, name in enumerate(names):
        if isinstance(name, bytes):
            try:
                name = name.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{path.name}: class name {i} is not UTF-8 text") from None
        if not isinstance(name, str):
            raise ValueError(f"{path.name}: class name {i} must be text, found {type(name).__name__}")
        if not name.strip() or len(name) > MAX_CLASS_NAME or not name.isprintable():
            raise ValueError(f"{path.name}: class name {i} must be 1 to {MAX_CLASS_NAME} printable characters")
        out.append(name)
    if len(set(out)) != len(out):
        dup = next(n for n in out if out.count(n) > 1)
        raise ValueError(f"{path.name}: class name {dup!r} appears twice; each class needs its own name")
    return out


def _read_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (N×3×32×32 uint8, N int64 labels in 0 … num_classes − 1)."""
    batch = safe_unpickle(path)
    data, labels = _field(batch, "data", path), _field(batch, "labels", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path.name}: 'data' must be a uint8 array of N×3072 pixels")
    n = data.shape[0]
    if n == 0:
        raise ValueError(f"{path.name}: 'data' holds no images")
    if isinstance(labels, np.ndarray):
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(f"{path.name}: 'labels' must be {n} whole numbers")
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        first = int(bad[0]) if len(bad) else None
    elif isinstance(labels, (list, tuple)):
        if len(labels) != n or not all(type(v) is int for v in labels):
            raise ValueError(f"{path.name}: 'labels' must be {n} whole numbers")
        first = next((i for i, v in enumerate(labels) if not 0 <= v < num_classes), None)
    else:
        raise ValueError(f"{path.name}: 'labels' must be a list of {n} whole numbers, found {type(labels).__name__}")
    if first is not None:
        raise ValueError(f"{path.name}: label {int(labels[first])} of image {first} is outside 0..{num_classes - 1} "
                         f"({num_classes} classes)")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def load_cifar10_dir(path: str | Path, input_size: int = 32, max_train: int | None = None,
                     max_val: int | None = None) -> DataSplit:
    """CIFAR-10 python batches -> ``DataSplit`` (train: data_batch_*, val: test_batch)."""
    root = Path(path)
    train_files = sorted(root.glob("data_batch_[1-9]"))
    if not train_files:
        raise FileNotFoundError(f"{root}: no data_batch_1 … data_batch_5 files")
    if not (root / "test_batch").is_file():
        raise FileNotFoundError(f"{root}: no test_batch file to validate on")
    classes = _label_names(root / "batches.meta") if (root / "batches.meta").is_file() else CIFAR10_CLASSES
    xs, ys = zip(*(_read_batch(f, len(classes)) for f in train_files), strict=True)
    train_x, train_y = np.concatenate(xs), np.concatenate(ys)
    val_x, val_y = _read_batch(root / "test_batch", len(classes))
    train_x, train_y = train_x[:max_train], train_y[:max_train]
    val_x, val_y = val_x[:max_val], val_y[:max_val]
    check_budget(len(train_y) + len(val_y), max(input_size, 32), what=f"{root.name}")
    to_float = lambda a: resize_images(torch.from_numpy(a).float().div_(255), input_size).clamp_(0, 1)  # noqa: E731
    return finish_split(f"cifar10:{root.name}", to_float(train_x), torch.from_numpy(train_y), to_float(val_x),
                        torch.from_numpy(val_y), classes, flip_ok=True)


# ----------------------------------------------------------------------------- ImageFolder


def _overlap(a: Path, b: Path) -> bool:
    """Whether two resolved folders are the same or one lies inside the other."""
    return a == b or a in b.parents or b in a.parents


def _class_folders(root: Path) -> list[Path]:
    """The class folders of ``root``, sorted by name; a symbolic link is followed only within ``root``.

    Refused (``ValueError``): a link loop, a link out of ``root`` (or to ``root`` itself), and two class
    folders that are one folder or nested, which would give the same images to two classes.
    """
    base = root.resolve()
    seen: list[tuple[Path, Path]] = []  # (resolved, as named)
    for d in sorted(root.iterdir()):
        if d.name.startswith("."):
            continue
        if d.is_symlink():
            try:
                real = d.resolve(strict=True)
            except FileNotFoundError:
                continue  # a dangling link is no folder, like a stray file
            except (OSError, RuntimeError):  # RuntimeError: Python < 3.13's "Symlink loop"
                raise ValueError(f"{d} is a symbolic link loop; remove it") from None
            if not real.is_dir():
                continue
            if real == base or real in base.parents:
                raise ValueError(f"{d} is a symbolic link back to {root} or above it (a loop); remove it")
            if base not in real.parents:
                raise ValueError(f"{d} is a symbolic link out of {root}; a class folder must lie inside the dataset "
                                 "folder: copy or move it in")
        elif d.is_dir():
            real = d.resolve()
        else:
            continue
        for other_real, other in seen:
            if _overlap(real, other_real):
                raise ValueError(f"class folders {other.name!r} and {d.name!r} in {root} are the same folder or one "
                                 "holds the other (a symbolic link); give each class a folder of its own")
        seen.append((real, d))
    return [d for _real, d in seen]


def _class_tree(root: Path) -> dict[str, list[Path]]:
    tree = {d.name: sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            for d in _class_folders(root)}
    return {name: files for name, files in tree.items() if files}


def _read_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if path.stat().st_size > MAX_IMAGE_FILE_BYTES:
        raise ValueError(f"{path}: larger than {MAX_IMAGE_FILE_BYTES >> 20} MiB; is it really an image?")
    try:
        # only the formats of IMAGE_FORMATS: whatever the file holds, no other Pillow reader sees it
        with Image.open(path, formats=list(IMAGE_FORMATS)) as img:
            w, h = img.size  # read from the header, nothing decoded yet
            if w * h > MAX_IMAGE_PIXELS:
                raise ValueError(f"{path}: {w}×{h} pixels is over the {MAX_IMAGE_PIXELS // 1_000_000} MP limit")
            rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not a readable image in an accepted format ({', '.join(IMAGE_FORMATS)}); "
                         "convert it or remove it") from None
    except (OSError, Image.DecompressionBombError) as exc:
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
    train_dir = root / "train"
    val_dir = next((root / d for d in ("val", "test") if (root / d).is_dir()), None)
    rng = np.random.RandomState(seed)
    if train_dir.is_dir() and val_dir is not None:
        if _overlap(train_dir.resolve(), val_dir.resolve()):
            raise ValueError(f"{train_dir} and {val_dir} are the same folder or one holds the other "
                             "(a symbolic link): validation images must not be training images")
        train_tree, val_tree = _class_tree(train_dir), _class_tree(val_dir)
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
