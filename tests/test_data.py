"""Data sources: bundled digits, procedural shapes, ImageFolder and CIFAR-10 batches (made here), safe unpickling."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.data import (
    MAX_TENSOR_BYTES,
    SHAPE_CLASSES,
    check_budget,
    load_dataset,
    make_shapes,
    safe_unpickle,
)


def test_digits_fixed_split_resized_normalised() -> None:
    a = load_dataset("digits", 24)
    b = load_dataset("digits", 24, seed=123)  # the digits split never depends on the seed
    assert a.train_x.shape == (1438, 3, 24, 24) and a.val_x.shape == (359, 3, 24, 24)
    assert torch.equal(a.val_y, b.val_y) and torch.equal(a.train_x, b.train_x)
    assert a.num_classes == 10 and not a.flip_ok
    assert sorted(torch.bincount(a.val_y).tolist())[0] >= 35  # stratified: every digit is in val
    assert abs(float(a.train_x.mean())) < 1e-3 and abs(float(a.train_x.std()) - 1) < 1e-2
    assert torch.equal(a.train_x[:, 0], a.train_x[:, 1])  # grey repeated to 3 channels
    c = load_dataset("digits", 16)
    assert c.train_x.shape[-1] == 16 and torch.equal(c.val_y, a.val_y)


def test_shapes_deterministic_balanced_sized() -> None:
    a = make_shapes(200, 50, 20, seed=3)
    b = make_shapes(200, 50, 20, seed=3)
    c = make_shapes(200, 50, 20, seed=4)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_y, b.val_y)
    assert not torch.equal(a.train_x, c.train_x)
    assert a.train_x.shape == (200, 3, 20, 20) and a.val_x.shape == (50, 3, 20, 20)
    counts = torch.bincount(torch.cat([a.train_y, a.val_y]), minlength=10)
    assert counts.tolist() == [25] * 10 and a.classes == SHAPE_CLASSES and a.flip_ok


def test_shapes_classes_differ_in_the_way_they_say() -> None:
    from explorer.data.shapes import shape_images

    rng = np.random.RandomState(0)
    labels = np.repeat(np.arange(10), 20)
    img = shape_images(labels, 32, rng).mean(axis=1)  # grey, N×32×32
    rows_var = img.var(axis=2).mean(axis=1)  # variation along a row
    cols_var = img.var(axis=1).mean(axis=1)  # variation down a column
    h, v = labels == 5, labels == 6
    assert rows_var[h].mean() < 0.2 * cols_var[h].mean()  # horizontal stripes: rows are flat
    assert cols_var[v].mean() < 0.2 * rows_var[v].mean()  # vertical stripes: columns are flat
    assert np.isfinite(img).all() and 0 <= img.min() and img.max() <= 1
    # with the same centre and radius: ring ⊂ disk ⊂ square (L2 ball inside the L∞ ball)
    from explorer.data.shapes import _masks

    disk, ring, square = (_masks(k, 16, 32, np.random.RandomState(5)) for k in (0, 4, 1))
    assert (ring <= disk).all() and ring.sum() < disk.sum() and (disk <= square).all() and disk.sum() < square.sum()


def test_budget_is_checked_before_allocating() -> None:
    with pytest.raises(ValueError, match="GiB"):
        check_budget(100_000, 256)
    with pytest.raises(ValueError, match="GiB"):
        make_shapes(150_000, 1000, 64)
    assert 150_000 * 3 * 64 * 64 * 4 > MAX_TENSOR_BYTES


def test_unknown_dataset_and_bad_sizes_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="digits, shapes"):
        load_dataset("no-such-thing")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        load_dataset(str(tmp_path / "f.txt"))
    with pytest.raises(ValueError, match="input size"):
        load_dataset("digits", 4)
    with pytest.raises(ValueError, match="at least 2 classes"):
        (tmp_path / "empty").mkdir()
        load_dataset(str(tmp_path / "empty"))


def _image_folder(root: Path, per_class: int = 5, size: tuple[int, int] = (40, 30)) -> None:
    rng = np.random.RandomState(0)
    for k, colour in enumerate(["red", "green", "blue"]):
        d = root / colour
        d.mkdir(parents=True)
        for i in range(per_class):
            arr = np.zeros((size[1], size[0], 3), np.uint8)
            arr[..., k] = 200 + rng.randint(0, 55)
            Image.fromarray(arr).save(d / f"{i}.{'png' if i % 2 else 'jpg'}")
    (root / "red" / "notes.txt").write_text("not an image")


def test_image_folder_split_and_labels(tmp_path: Path) -> None:
    _image_folder(tmp_path / "imgs")
    d = load_dataset(str(tmp_path / "imgs"), 16, seed=1)
    assert d.classes == ["blue", "green", "red"] and d.num_classes == 3
    assert len(d.train_y) + len(d.val_y) == 15 and len(d.val_y) == 3  # 1 of 5 per class to val
    assert d.train_x.shape[1:] == (3, 16, 16)
    # the dominant channel matches the class: red images are brightest in channel 0, and so on
    raw = d.train_x * torch.tensor(d.std).view(1, 3, 1, 1) + torch.tensor(d.mean).view(1, 3, 1, 1)
    dominant = raw.mean(dim=(2, 3)).argmax(1)
    assert torch.equal(dominant, 2 - d.train_y)  # blue (0) -> channel 2, green (1) -> 1, red (2) -> 0
    again = load_dataset(str(tmp_path / "imgs"), 16, seed=1)
    assert torch.equal(again.train_y, d.train_y)


def test_image_folder_with_train_val_dirs_and_a_broken_image(tmp_path: Path) -> None:
    _image_folder(tmp_path / "ds" / "train", per_class=2)
    _image_folder(tmp_path / "ds" / "val", per_class=1)
    d = load_dataset(str(tmp_path / "ds"), 12)
    assert len(d.train_y) == 6 and len(d.val_y) == 3
    (tmp_path / "ds" / "val" / "red" / "bad.png").write_bytes(b"not really a png")
    with pytest.raises(ValueError, match="bad.png: not a readable image"):
        load_dataset(str(tmp_path / "ds"), 12)


def _cifar_batch(n: int, seed: int, protocol: int) -> bytes:
    rng = np.random.RandomState(seed)
    batch = {b"batch_label": b"test batch", b"labels": [int(v) for v in rng.randint(0, 10, n)],
             b"data": rng.randint(0, 256, (n, 3072)).astype(np.uint8),
             b"filenames": [f"img{i}.png".encode() for i in range(n)]}
    return pickle.dumps(batch, protocol=protocol)


def test_cifar10_batches_load(tmp_path: Path) -> None:
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    (root / "data_batch_1").write_bytes(_cifar_batch(30, 1, protocol=2))  # protocol 2 as the real files
    (root / "data_batch_2").write_bytes(_cifar_batch(20, 2, protocol=4))
    (root / "test_batch").write_bytes(_cifar_batch(10, 3, protocol=2))
    names = [c.encode() for c in ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]]
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": names, b"num_vis": 3072}, protocol=2))
    d = load_dataset(str(root), 32)
    assert d.train_x.shape == (50, 3, 32, 32) and d.val_x.shape == (10, 3, 32, 32)
    assert d.classes[0] == "plane" and d.num_classes == 10
    raw = pickle.loads(_cifar_batch(30, 1, protocol=2))
    assert d.train_y[:30].tolist() == raw[b"labels"]
    # pixel (channel 0, row 0, col 1) of image 0 is byte 1 of its row, scaled then normalised
    expect = (raw[b"data"][0, 1] / 255 - d.mean[0]) / d.std[0]
    assert abs(float(d.train_x[0, 0, 0, 1]) - expect) < 1e-4
    small = load_dataset(str(root), 16, n_train=12)
    assert small.train_x.shape == (12, 3, 16, 16)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_safe_unpickle_refuses_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "evil"
    root.mkdir()
    (root / "data_batch_1").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}, protocol=2))
    (root / "test_batch").write_bytes(_cifar_batch(4, 0, protocol=2))
    with pytest.raises(ValueError, match=r"data_batch_1: refused to load (posix|os)\.system"):
        load_dataset(str(root))
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()
    # a numpy array of Python objects is refused too (its items could be anything)
    (root / "obj").write_bytes(pickle.dumps(np.array([1, "a"], dtype=object), protocol=2))
    with pytest.raises(ValueError, match="objects"):
        safe_unpickle(root / "obj")
    # plain data round-trips
    (root / "ok").write_bytes(pickle.dumps({"a": [1, 2.5, "x", b"y"], "b": np.arange(6).reshape(2, 3)}))
    back = safe_unpickle(root / "ok")
    assert back["a"] == [1, 2.5, "x", b"y"] and back["b"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_cifar_batch_with_wrong_contents_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    (root / "data_batch_1").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    (root / "test_batch").write_bytes(_cifar_batch(4, 0, protocol=2))
    with pytest.raises(ValueError, match="N×3072"):
        load_dataset(str(root))
