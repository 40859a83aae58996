"""Small image-classification data for short proxy-training runs; nothing is downloaded.

``load_dataset(name_or_path, input_size, seed)`` returns a :class:`DataSplit`: train and
validation tensors already in memory (N×3×S×S float32, normalised per channel with the training
set's mean and standard deviation), integer labels, the class names and whether a horizontal
flip keeps every label (it does not for digits).

Sources:

- ``digits``: scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes), resized;
- ``shapes``: a procedural 10-class set (shapes, textures, noise, colour), deterministic from a seed;
- a directory: CIFAR-10 python batches (``data_batch_1`` … ``test_batch``) or an ImageFolder
  tree (``root/<class>/<image>``, optionally with ``train/`` and ``val/`` sub-trees).

Every size is checked before anything is allocated (:data:`MAX_TENSOR_BYTES`).
"""

from __future__ import annotations

from pathlib import Path

from .common import MAX_IMAGES, MAX_TENSOR_BYTES, DataSplit, check_budget
from .digits import load_digits_split
from .folders import load_cifar10_dir, load_image_folder, safe_unpickle
from .shapes import SHAPE_CLASSES, make_shapes

__all__ = [
    "BUILTIN_DATASETS",
    "DataSplit",
    "MAX_IMAGES",
    "MAX_TENSOR_BYTES",
    "SHAPE_CLASSES",
    "check_budget",
    "load_cifar10_dir",
    "load_dataset",
    "load_digits_split",
    "load_image_folder",
    "make_shapes",
    "safe_unpickle",
]

#: datasets that ship with the project (no path needed)
BUILTIN_DATASETS = ("digits", "shapes")


def load_dataset(
    name_or_path: str | Path,
    input_size: int = 32,
    seed: int = 0,
    *,
    n_train: int | None = None,
    n_val: int | None = None,
) -> DataSplit:
    """``digits`` | ``shapes`` | a CIFAR-10 batches directory | an ImageFolder directory -> ``DataSplit``.

    ``seed`` fixes what is random in the data itself (the shapes generator, the train/val split of
    a folder without ``val/``); the digits split is fixed once and for all. ``n_train`` and
    ``n_val`` size the generated ``shapes`` set (default 5,000 / 1,000) and cap the others.
    """
    if not isinstance(input_size, int) or not 8 <= input_size <= 512:
        raise ValueError(f"input size {input_size!r} is out of range; use 8 to 512 pixels")
    name = str(name_or_path)
    if name == "digits":
        split = load_digits_split(input_size)
    elif name == "shapes":
        split = make_shapes(n_train if n_train is not None else 5000, n_val if n_val is not None else 1000,
                            input_size, seed)
        return split
    else:
        path = Path(name).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"no dataset {name!r}: use digits, shapes, a CIFAR-10 python-batches directory "
                "or an ImageFolder directory"
            )
        if not path.is_dir():
            raise ValueError(f"{name!r} is a file; give a directory (CIFAR-10 batches or ImageFolder)")
        if (path / "data_batch_1").is_file() or (path / "test_batch").is_file():
            split = load_cifar10_dir(path, input_size, max_train=n_train, max_val=n_val)
        else:
            split = load_image_folder(path, input_size, seed=seed, max_train=n_train, max_val=n_val)
    return split.limited(n_train, n_val)
