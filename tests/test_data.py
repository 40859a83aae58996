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
    assert np.isfinite(img).all() and img.min() >= 0 and img.max() <= 1
    # with the same centre and radius: ring ⊂ disk ⊂ square (L2 ball inside the L∞ ball)
    from explorer.data.shapes import _masks

    disk, ring, square = (_masks(k, 16, 32, np.random.RandomState(5)) for k in (0, 4, 1))
    assert (ring <= disk).all() and ring.sum() < disk.sum() and (disk <= square).all() and disk.sum() < square.sum()


def test_budget_is_checked_before_allocating() -> None:
    with pytest.raises(ValueError, match="GiB"):
        check_budget(100_000, 256)
    with pytest.raises(ValueError, match="GiB"):
        make_shapes(150_000, 1000, 64)
    assert MAX_TENSOR_BYTES < 150_000 * 3 * 64 * 64 * 4


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
    raw = pickle.loads(_cifar_batch(30, 1, protocol=2))  # noqa: S301 - the bytes this test just made
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


# ----------------------------------------------------------------------------- hostile CIFAR folders


def _cifar_dir(root: Path, meta: object = None, train: object = None) -> Path:
    root.mkdir(parents=True)
    (root / "data_batch_1").write_bytes(train if isinstance(train, bytes) else
                                        pickle.dumps(train) if train is not None else _cifar_batch(20, 1, protocol=2))
    (root / "test_batch").write_bytes(_cifar_batch(10, 3, protocol=2))
    if meta is not None:
        (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": meta, b"num_vis": 3072}, protocol=2))
    return root


def _one_line_error(path: Path, *fragments: str) -> str:
    with pytest.raises(ValueError) as info:
        load_dataset(str(path))
    message = str(info.value)
    assert "\n" not in message and len(message) < 300, message
    for fragment in fragments:
        assert fragment in message, message
    return message


TEN = [f"c{i}".encode() for i in range(10)]


@pytest.mark.parametrize("names,fragment", [
    (b"airplane,car", "must be a list of class names, found bytes"),  # iterable: once gave classes '97', '98', …
    (10, "must be a list of class names, found int"),  # once a TypeError traceback
    ({b"a": 1, b"b": 2}, "found dict"),
    ([b"only-one"], "holds 1 names; use 2 to"),
    ([b"cat", 7], "class name 1 must be text, found int"),
    ([b"cat", b"\xff\xfe"], "class name 1 is not UTF-8"),
    ([b"cat", b"\x1b[31mred"], "class name 1 must be 1 to"),
    ([b"cat", b"   "], "class name 1 must be 1 to"),
    ([b"cat", b"x" * 500], "class name 1 must be 1 to"),
    ([b"cat", b"dog", b"cat"], "'cat' appears twice"),
])
def test_cifar_meta_is_checked_field_by_field(tmp_path: Path, names: object, fragment: str) -> None:
    root = _cifar_dir(tmp_path / "c", meta=names)
    _one_line_error(root, "batches.meta: ", fragment)


def test_cifar_labels_and_pixels_are_checked(tmp_path: Path) -> None:
    good = np.zeros((3, 3072), np.uint8)
    cases = [
        ({b"data": good, b"labels": [0, 12, 1]}, "label 12 of image 1 is outside 0..9"),
        ({b"data": good, b"labels": np.array([0, -1, 1])}, "label -1 of image 1 is outside 0..9"),
        ({b"data": good, b"labels": [0, 1.5, 2]}, "'labels' must be 3 whole numbers"),
        ({b"data": good, b"labels": [[0], [1, 2], [3]]}, "'labels' must be 3 whole numbers"),
        ({b"data": good, b"labels": [True, False, True]}, "'labels' must be 3 whole numbers"),
        ({b"data": good, b"labels": b"abc"}, "found bytes"),
        ({b"data": good, b"labels": [0, 1]}, "'labels' must be 3 whole numbers"),
        ({b"data": good.tolist(), b"labels": [0, 1, 2]}, "'data' must be a uint8 array of N×3072"),
        ({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, "'data' holds no images"),
        ({b"data": np.zeros((3, 3, 32, 32), np.uint8), b"labels": [0, 1, 2]}, "N×3072"),
        ([good, [0, 1, 2]], "expected a dict"),
    ]
    for i, (batch, fragment) in enumerate(cases):
        _one_line_error(_cifar_dir(tmp_path / f"c{i}", train=batch), "data_batch_1: ", fragment)
    # the class count comes from batches.meta: label 12 is fine with 13 names
    root = _cifar_dir(tmp_path / "thirteen", meta=[f"k{i}".encode() for i in range(13)],
                      train={b"data": good, b"labels": [0, 12, 1]})
    d = load_dataset(str(root))
    assert d.num_classes == 13 and d.train_y.tolist() == [0, 12, 1]


class _HugeArray:
    """Pickles as numpy's own array rebuild with a declared shape of 2⁴⁰ bytes."""

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        rebuild = (np._core if hasattr(np, "_core") else np.core).multiarray._reconstruct
        return (rebuild, (np.ndarray, (1 << 40,), b"b"))


def test_safe_unpickle_bounds_what_a_small_file_can_build(tmp_path: Path) -> None:
    huge = tmp_path / "huge"
    huge.write_bytes(pickle.dumps({b"data": _HugeArray(), b"labels": [0]}, protocol=2))
    assert huge.stat().st_size < 200
    with pytest.raises(ValueError, match="huge: refused: an array of shape .* is larger than a data file may be"):
        safe_unpickle(huge)
    bomb = tmp_path / "bomb"  # 4 MB that would build 2 million nested lists
    bomb.write_bytes(b"\x80\x02]" + b"]a" * 2_100_000 + b".")
    with pytest.raises(ValueError, match="bomb: refused: more than 2,000,000 pickle opcodes"):
        safe_unpickle(bomb)
    # a real-size batch (10,000 images, protocol 2 as CIFAR's own files) is well inside the bound
    real = tmp_path / "real"
    real.write_bytes(_cifar_batch(10_000, 0, protocol=2))
    assert safe_unpickle(real)[b"data"].shape == (10_000, 3072)


def test_cli_train_on_a_bad_cifar_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from explorer.cli import main

    from tiny_designs import tiny_design

    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(tiny_design(width=8, stem_stride=2), sort_keys=False))
    root = _cifar_dir(tmp_path / "cifar", meta=10)
    code = main(["train", str(spec), "--dataset", str(root), "--input", "16", "--steps", "1",
                 "--db", str(tmp_path / "s.sqlite")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("error: batches.meta: 'label_names' must be a list") and err.count("\n") == 1


# ----------------------------------------------------------------------------- hostile image folders


def test_symlinked_class_folders(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    _image_folder(root, per_class=2)
    (root / "blue2").symlink_to(root / "blue", target_is_directory=True)  # once: a second class, same images
    _one_line_error(root, "class folders 'blue' and 'blue2'", "the same folder")
    (root / "blue2").unlink()
    (root / "all").symlink_to(root, target_is_directory=True)  # once: a class holding every other class
    _one_line_error(root, f"{root / 'all'} is a symbolic link back to {root}", "loop")
    (root / "all").unlink()
    (root / "loop").symlink_to(root / "loop")
    _one_line_error(root, f"{root / 'loop'} is a symbolic link loop")
    (root / "loop").unlink()
    outside = tmp_path / "elsewhere"
    _image_folder(outside, per_class=2)
    (root / "grey").symlink_to(outside / "red", target_is_directory=True)
    _one_line_error(root, f"{root / 'grey'} is a symbolic link out of {root}")
    (root / "grey").unlink()
    # a link to a folder inside the tree that is no class is followed; a dangling link is ignored
    (root / ".store").mkdir()
    (root / "red").rename(root / ".store" / "red-images")
    (root / "red").symlink_to(root / ".store" / "red-images", target_is_directory=True)
    (root / "gone").symlink_to(root / "nowhere", target_is_directory=True)
    d = load_dataset(str(root), 12, seed=0)
    assert d.classes == ["blue", "green", "red"] and len(d.train_y) + len(d.val_y) == 6


def test_train_and_val_that_are_one_folder_are_refused(tmp_path: Path) -> None:
    _image_folder(tmp_path / "ds" / "train", per_class=2)
    (tmp_path / "ds" / "val").symlink_to(tmp_path / "ds" / "train", target_is_directory=True)
    _one_line_error(tmp_path / "ds", "are the same folder", "validation images must not be training images")


_EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n%%EndComments\n"
        b"newpath 0 0 moveto 8 8 lineto stroke\nshowpage\n%%EOF\n")


def test_only_image_formats_reach_pillow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import EpsImagePlugin

    root = tmp_path / "imgs"
    _image_folder(root, per_class=2)
    sneaky = root / "green" / "x.png"
    sneaky.write_bytes(_EPS)
    with Image.open(sneaky) as img:  # Pillow left to itself takes it for EPS, and loading it would run Ghostscript
        assert img.format == "EPS"
    opened: list[object] = []
    real_open = EpsImagePlugin.EpsImageFile._open
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: opened.append(self) or real_open(self))
    message = _one_line_error(root, f"{sneaky}: not a readable image in an accepted format (PNG, JPEG, BMP, GIF")
    assert "convert it or remove it" in message and opened == []  # the EPS reader never saw it
    # a PNG file named .jpg is still a PNG: the name does not matter, the format does
    sneaky.unlink()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "green" / "y.jpg", format="PNG")
    assert load_dataset(str(root), 12).num_classes == 3
