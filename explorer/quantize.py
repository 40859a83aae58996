"""int8 deployment: static quantization of a trained network in ONNX Runtime, verified and timed.

``quantize(spec, output=..., run_id=... | train_steps=... | weights=...)``:

1. the network: a stored run's trained weights (the training copy of the design at the run's input
   size and classes, as :mod:`explorer.train` saved it), a fresh short training run (recorded in the
   store like any run), or a weights file (:mod:`explorer.checkpoint`, e.g. from
   ``explorer weights import``); an untrained network is refused, its accuracy would mean nothing;
2. fp32 ONNX: reparameterised, batch 1, as ``explorer export`` writes it (:func:`explorer.export.onnx_bytes`);
3. ``quant_pre_process`` (shape inference and ONNX Runtime's graph optimisations, BatchNorm folded),
   then ``quantize_static`` in the QDQ format: weights int8 per output channel (symmetric),
   activations uint8 per tensor (asymmetric), ranges from MinMax calibration on ``calib`` ≥ 100 real
   training images of the dataset, drawn with ``seed``. An activation x is stored as
   q = clamp(round(x / s) + z, 0, 255) with s = (max − min) / 255 over the calibration images
   (one step for every int8 graph: :func:`explorer.latency.qdq.quantize_qdq`); the units named by
   ``keep_fp32`` (unit names, stages or block types, :func:`fp32_units`) stay fp32;
4. verification on the whole validation split: top-1 of both graphs in ONNX Runtime and their
   top-1 agreement (1/N) Σ_i [argmax f32(x_i) = argmax int8(x_i)];
5. latency of both in ONNX Runtime on this CPU, *interleaved* (each round runs fp32 then int8 once,
   after a warm-up of each; 1 intra-op thread): load from other work falls on both alike; the
   median of the rounds is reported;
6. the int8 file is written to a temporary file beside ``output`` and renamed at the end, so a
   failure (a graph that does not quantize, a bad run, too few images) leaves nothing half-written.

Data: with a run, the run's dataset (or ``dataset``) loaded exactly as training loaded it
(:func:`explorer.data.load_dataset`, the run's input size and data seed). With ``weights`` and an
ImageFolder directory, the folder is read with the ImageNet preprocessing of :mod:`explorer.evaluate`
(resize, centre-crop, normalise): calibration images are drawn from it and the rest validate.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .build import reparameterize
from .checkpoint import CheckpointError, load_checkpoint
from .data import load_dataset
from .design import DesignRef, load_design, retarget
from .evaluate import folder_batches, list_folder
from .export import onnx_bytes
from .latency.qdq import HARDSWISH, METHODS, quantize_qdq
from .spec import ArchitectureSpec, SpecError, expand_units
from .store import StepRow, Store

__all__ = ["JSON_KEYS", "METHODS", "MIN_CALIB", "QuantizeError", "QuantizeResult", "fp32_units", "network_for_run",
           "onnx_top1", "quantize", "quantize_network", "quantize_onnx", "same_design", "time_interleaved",
           "weights_for"]

MIN_CALIB = 100
JSON_KEYS = ("fp32_accuracy", "int8_accuracy", "top1_agreement", "fp32_ms", "int8_ms", "fp32_bytes", "int8_bytes",
             "path")

Progress = Callable[[float, str], None]


class QuantizeError(ValueError):
    """A request that cannot be quantized (one line naming the fix)."""


@dataclass
class QuantizeResult:
    """fp32 vs int8 of one trained network (``to_json`` is what ``explorer quantize --json`` prints)."""

    fp32_accuracy: float
    int8_accuracy: float
    top1_agreement: float
    fp32_ms: float
    int8_ms: float
    fp32_bytes: int
    int8_bytes: int
    path: str
    design: str
    dataset: str
    input_size: int
    calib_images: int
    val_images: int
    run_id: int | None = None
    method: str = "minmax"
    per_channel: bool = True
    hardswish: str = "keep"
    fp32_units: list[str] = field(default_factory=list)  # units left in fp32, by name

    @property
    def speedup(self) -> float:
        """fp32 latency / int8 latency (> 1: int8 is faster)."""
        return self.fp32_ms / self.int8_ms if self.int8_ms > 0 else float("nan")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        return {k: out[k] for k in JSON_KEYS} | {k: v for k, v in out.items() if k not in JSON_KEYS}


def _noop(_fraction: float, _desc: str) -> None:
    return None


# ----------------------------------------------------------------------------- ONNX Runtime steps


def quantize_onnx(fp32: bytes, calib: Sequence[np.ndarray], method: str = "minmax", *, per_channel: bool = True,
                  keep_fp32: Collection[str] = (), hardswish: str = "keep") -> bytes:
    """fp32 ONNX bytes -> QDQ int8 ONNX bytes (see the module docstring, step 3; :func:`latency.qdq.quantize_qdq`).

    ``calib``: C×H×W float32 images, preprocessed as the network expects. Raises
    ``QuantizeError`` when there are fewer than :data:`MIN_CALIB`, or the graph does not quantize.
    ``method``: how activation ranges are calibrated, one of :data:`METHODS` (``minmax``: the observed
    range; ``percentile``: the 99.999th percentile of |x|; ``entropy``: the KL-optimal threshold).
    ``keep_fp32``: module paths of units left in fp32 (see :func:`fp32_units`); ``per_channel=False``:
    one weight scale per tensor; ``hardswish="clip"``: HardSwish rewritten to run in int8 (``latency.qdq``).
    """
    import onnx

    if method not in METHODS:
        raise QuantizeError(f"calibration method {method!r}: use one of {', '.join(METHODS)}")
    if len(calib) < MIN_CALIB:
        raise QuantizeError(f"{len(calib)} calibration images are too few; give at least {MIN_CALIB}")
    if hardswish not in HARDSWISH:
        raise QuantizeError(f"--hardswish {hardswish!r}: use one of {', '.join(HARDSWISH)}")
    try:
        name = onnx.load_from_string(fp32).graph.input[0].name
        feeds = [{name: np.ascontiguousarray(image[None], dtype=np.float32)} for image in calib]
        int8 = quantize_qdq(fp32, feeds, method=method, per_channel=per_channel, keep_fp32=keep_fp32,
                            hardswish=hardswish)
        model = onnx.load_from_string(int8)
    except Exception as exc:  # noqa: BLE001 - onnx/onnxruntime raise many types; one line names it
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise QuantizeError(f"the graph does not quantize ({type(exc).__name__}: {text})") from None
    if not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node):
        raise QuantizeError("the graph does not quantize: ONNX Runtime inserted no quantize/dequantize node "
                            "(no convolution or matrix product to quantize?)")
    return int8


def fp32_units(spec: ArchitectureSpec, selectors: Sequence[str]) -> list[str]:
    """Module paths of the units that ``selectors`` name, to keep in fp32, in execution order.

    A selector is a unit's name (``stem.b1``, ``s2.b3``, ``head``), a stage (``stem``, ``s2``: all
    its units) or a block type (``mobileone``: every unit of that type). An unknown selector raises
    ``QuantizeError`` listing the valid ones.
    """
    units = expand_units(spec)
    groups: dict[str, set[str]] = {}
    for u in units:
        stage = u.name.split(".")[0]
        for key in (u.name, stage, u.type):
            groups.setdefault(key, set()).add(u.module_path)
    chosen: set[str] = set()
    for sel in selectors:
        key = sel.strip()
        if key not in groups:
            stages = sorted({u.name.split(".")[0] for u in units}, key=[u.name.split(".")[0] for u in units].index)
            types = sorted({u.type for u in units})
            raise QuantizeError(f"--fp32 {sel!r} names no unit of {spec.name}; use a stage ({', '.join(stages)}), a "
                                f"unit ({units[0].name} … {units[-1].name}, see explorer summarize) or a block type "
                                f"({', '.join(types)})")
        chosen |= groups[key]
    return [u.module_path for u in units if u.module_path in chosen]


def _session(model: bytes, threads: int = 1) -> Any:
    from .latency.agent import make_session

    return make_session(model, threads)


def onnx_top1(model: bytes | Any, images: Iterable[np.ndarray], threads: int = 1) -> np.ndarray:
    """argmax of the logits for every image (C×H×W, or a batch N×C×H×W run one at a time)."""
    session = _session(model, threads) if isinstance(model, bytes) else model
    name = session.get_inputs()[0].name
    out: list[int] = []
    for x in images:
        batch = x[None] if x.ndim == 3 else x
        for i in range(len(batch)):
            logits = session.run(None, {name: np.ascontiguousarray(batch[i:i + 1], dtype=np.float32)})[0]
            out.append(int(np.argmax(logits[0])))
    return np.asarray(out, dtype=np.int64)


def time_interleaved(models: Sequence[bytes], feed: np.ndarray, runs: int = 50, warmup: int = 10,
                     threads: int = 1, progress: Callable[[int, int], None] | None = None) -> list[float]:
    """Median milliseconds of each model, timed in interleaved rounds (each model once per round)."""
    from .latency.agent import check_settings

    check_settings(runs, warmup, threads)
    sessions = [_session(m, threads) for m in models]
    feeds = [{s.get_inputs()[0].name: np.ascontiguousarray(feed, dtype=np.float32)} for s in sessions]
    for s, f in zip(sessions, feeds, strict=True):
        for _ in range(warmup):
            s.run(None, f)
    times: list[list[float]] = [[] for _ in sessions]
    for r in range(runs):
        for k, (s, f) in enumerate(zip(sessions, feeds, strict=True)):
            t0 = time.perf_counter()
            s.run(None, f)
            times[k].append((time.perf_counter() - t0) * 1e3)
        if progress is not None:
            progress(r + 1, runs)
    return [float(np.median(t)) for t in times]


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def check_output(output: str | Path) -> Path:
    """The output path, refused (one line) before any work when its folder is missing or it is a folder."""
    path = Path(output).expanduser()
    if path.is_dir():
        raise QuantizeError(f"-o {path} is a folder; give a file name such as model-int8.onnx")
    if not path.parent.is_dir():
        raise QuantizeError(f"-o {path}: the folder {path.parent} does not exist")
    return path


def quantize_network(
    spec: ArchitectureSpec,
    model: nn.Module,
    calib: Sequence[np.ndarray],
    val: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]],
    output: str | Path,
    *,
    dataset: str = "",
    run_id: int | None = None,
    runs: int = 50,
    warmup: int = 10,
    method: str = "minmax",
    per_channel: bool = True,
    keep_fp32: Sequence[str] = (),
    fp32_output: str | Path | None = None,
    hardswish: str = "keep",
    eval_threads: int = 1,
    progress: Progress | None = None,
) -> QuantizeResult:
    """Export ``model`` (the network of ``spec``, trained), quantize, verify on ``val``, time, write ``output``.

    ``val()`` yields ``(N×C×H×W float32, N labels)`` batches of the validation split (called twice).
    ``keep_fp32``: selectors of units left in fp32 (:func:`fp32_units`). ``fp32_output``: where the
    fp32 ONNX graph goes too (e.g. to time both on a board), written like ``output``.
    """
    progress = progress or _noop
    output = check_output(output)
    kept = fp32_units(spec, keep_fp32)
    progress(0.0, "exporting fp32 ONNX")
    net = reparameterize(model).eval()
    fp32 = onnx_bytes(spec, net)
    progress(0.1, f"calibrating on {len(calib)} images")
    int8 = quantize_onnx(fp32, calib, method, per_channel=per_channel, keep_fp32=kept, hardswish=hardswish)
    sessions = {"fp32": _session(fp32, eval_threads), "int8": _session(int8, eval_threads)}
    preds: dict[str, np.ndarray] = {}
    labels: list[np.ndarray] = []
    for i, (name, session) in enumerate(sessions.items()):
        progress(0.3 + 0.25 * i, f"top-1 of {name} on the validation split")
        chunks = []
        for x, y in val():
            chunks.append(onnx_top1(session, [x]))
            if name == "fp32":
                labels.append(y)
        preds[name] = np.concatenate(chunks)
    y_all = np.concatenate(labels)
    if len(y_all) == 0:
        raise QuantizeError("the validation split is empty; nothing to verify the int8 graph on")
    progress(0.8, f"timing fp32 and int8 ({runs} interleaved rounds, 1 thread)")
    feed = np.asarray(calib[0][None], dtype=np.float32)
    fp32_ms, int8_ms = time_interleaved([fp32, int8], feed, runs=runs, warmup=warmup, threads=1)
    _write_atomically(output, int8)
    if fp32_output is not None:
        _write_atomically(check_output(fp32_output), fp32)
    progress(1.0, "done")
    return QuantizeResult(
        fp32_accuracy=float((preds["fp32"] == y_all).mean()), int8_accuracy=float((preds["int8"] == y_all).mean()),
        top1_agreement=float((preds["fp32"] == preds["int8"]).mean()), fp32_ms=fp32_ms, int8_ms=int8_ms,
        fp32_bytes=len(fp32), int8_bytes=len(int8), path=str(output), design=spec.name, dataset=dataset,
        input_size=spec.input.hw[0], calib_images=len(calib), val_images=int(len(y_all)), run_id=run_id,
        method=method, per_channel=per_channel, hardswish=hardswish,
        fp32_units=[u.name for u in expand_units(spec) if u.module_path in kept])


# ----------------------------------------------------------------------------- where the network comes from


def same_design(spec: ArchitectureSpec, trained: ArchitectureSpec) -> bool:
    """Whether ``trained`` is ``spec`` at another input size / classes / channels (names aside)."""
    try:
        h, w = trained.input.hw
        mine = retarget(spec, input_size=h if h == w else (h, w), num_classes=trained.num_classes,
                        channels=trained.input.channels).to_dict()
    except SpecError:
        return False
    theirs = trained.to_dict()
    mine.pop("name", None)
    theirs.pop("name", None)
    return bool(mine == theirs)


def weights_for(spec: ArchitectureSpec, path: str | Path, what: str = "") -> tuple[ArchitectureSpec, nn.Module]:
    """(trained spec, network) of a weights file, refused (``QuantizeError``) unless it holds ``spec``'s weights."""
    what = what or f"weights file {Path(path).name}"
    try:
        trained_spec, model = load_checkpoint(path)
    except CheckpointError as exc:
        raise QuantizeError(f"{what}: {exc}") from None
    if not same_design(spec, trained_spec):
        raise QuantizeError(f"{what} holds weights of {trained_spec.name!r}, another design than {spec.name!r}; "
                            f"give a run or weights of {spec.name}")
    return trained_spec, model


def network_for_run(store: Store, run_id: int, spec: ArchitectureSpec) -> tuple[ArchitectureSpec, nn.Module, Any]:
    """(trained spec, trained network, the run row) of a stored run of ``spec``; ``QuantizeError`` if not."""
    run = store.get_run(run_id)  # ValueError naming `explorer runs` when there is none
    if not run.weights_path:
        raise QuantizeError(f"run {run_id} ({run.status}) has no weights; train it again or choose another run")
    trained_spec, model = weights_for(spec, run.weights_path, f"run {run_id}")
    return trained_spec, model, run


def _calib_indices(n_available: int, calib: int, seed: int, where: str) -> np.ndarray:
    if calib < MIN_CALIB:
        raise QuantizeError(f"--calib {calib}: give at least {MIN_CALIB} calibration images")
    if n_available < calib:
        raise QuantizeError(f"{where} has only {n_available} training images, too few for {calib} calibration "
                            f"images; use --calib {n_available} or more data" if n_available >= MIN_CALIB else
                            f"{where} has only {n_available} training images; calibration needs at least "
                            f"{MIN_CALIB}: use a larger dataset")
    return np.sort(np.random.RandomState(seed).permutation(n_available)[:calib])


def quantize(
    spec: DesignRef,
    output: str | Path,
    *,
    run_id: int | None = None,
    train_steps: int | None = None,
    weights: str | Path | None = None,
    dataset: str | None = None,
    calib: int = MIN_CALIB,
    seed: int = 0,
    store: Store | None = None,
    runs: int = 50,
    warmup: int = 10,
    max_val: int | None = None,
    method: str = "minmax",
    per_channel: bool = True,
    keep_fp32: Sequence[str] = (),
    fp32_output: str | Path | None = None,
    hardswish: str = "keep",
    eval_threads: int = 1,
    progress: Progress | None = None,
    on_train_step: Callable[[StepRow], None] | None = None,
) -> QuantizeResult:
    """Quantize ``spec``'s trained network (from ``run_id``, ``train_steps`` or ``weights``) into ``output``.

    Exactly one source of weights is required. ``store`` is needed for ``run_id`` and ``train_steps``.
    ``max_val`` caps the validation images of an ImageFolder read with ``weights``. ``keep_fp32``:
    units left in fp32 (:func:`fp32_units`: unit names, stages or block types), checked before training.
    ``fp32_output``: also write the fp32 ONNX graph there.
    """
    progress = progress or _noop
    sources = [s for s in (run_id, train_steps, weights) if s is not None]
    if not sources:
        raise QuantizeError("quantize needs trained weights: give --run ID, --train-steps N or --weights FILE "
                            "(an untrained network's accuracy means nothing)")
    if len(sources) > 1:
        raise QuantizeError("give only one of --run, --train-steps and --weights")
    output = check_output(output)
    base = load_design(spec)
    if calib < MIN_CALIB:
        raise QuantizeError(f"--calib {calib}: give at least {MIN_CALIB} calibration images")
    if method not in METHODS:
        raise QuantizeError(f"--method {method!r}: use one of {', '.join(METHODS)}")
    if hardswish not in HARDSWISH:
        raise QuantizeError(f"--hardswish {hardswish!r}: use one of {', '.join(HARDSWISH)}")
    fp32_units(base, keep_fp32)  # a bad name is refused before anything is trained

    run: Any = None
    if train_steps is not None:
        from .train import make_config, train

        if store is None:
            raise QuantizeError("--train-steps needs a store to record the run in")
        config = make_config(dataset=dataset or "digits", steps=train_steps, seed=seed)

        def on_step(point: StepRow) -> None:
            progress(0.5 * point.step / max(1, train_steps), f"training {base.name}: step {point.step}")
            if on_train_step is not None:
                on_train_step(point)

        result = train(base, config, on_step=on_step, store=store)
        run_id = result.run_id
        dataset = None  # the run's own
    if run_id is not None:
        if store is None:
            raise QuantizeError("--run needs the store that holds the run (--db)")
        trained_spec, model, run = network_for_run(store, run_id, base)
    else:
        trained_spec, model = weights_for(base, weights, f"weights file {Path(weights).name}")  # type: ignore[arg-type]

    def report(fraction: float, desc: str) -> None:
        progress(fraction if train_steps is None else 0.5 + 0.5 * fraction, desc)

    size = trained_spec.input.hw[0]
    folder = dataset is not None and run is None and Path(dataset).expanduser().is_dir() and not (
        Path(dataset).expanduser() / "data_batch_1").is_file()
    if folder:  # a weights file evaluated on an ImageFolder: ImageNet preprocessing (explorer.evaluate)
        files, classes = list_folder(dataset)  # type: ignore[arg-type]
        if len(classes) > trained_spec.num_classes:
            raise QuantizeError(f"{dataset}: {len(classes)} class folders, but the network has "
                                f"{trained_spec.num_classes} outputs")
        take = set(_calib_indices(len(files), calib, seed, str(dataset)).tolist())
        calib_x = [x[0] for x, _ in folder_batches([files[i] for i in sorted(take)], size, 1)]
        rest = [f for i, f in enumerate(files) if i not in take][:max_val]
        if not rest:
            raise QuantizeError(f"{dataset}: no image is left to validate on after {calib} calibration images")
        name = str(dataset)

        def val() -> Iterable[tuple[np.ndarray, np.ndarray]]:
            return folder_batches(rest, size, 32)
    else:
        cfg = run.config if run is not None else {}
        name = dataset or (run.dataset if run is not None else "digits")
        data = load_dataset(name, int(cfg.get("input_size", size)), int(cfg.get("data_seed", 0)),
                            n_train=cfg.get("n_train"), n_val=cfg.get("n_val"))
        if data.num_classes != trained_spec.num_classes or data.input_size != size:
            raise QuantizeError(f"dataset {name} has {data.num_classes} classes at {data.input_size}², the network "
                                f"{trained_spec.num_classes} at {size}²; give the dataset it was trained on")
        idx = _calib_indices(len(data.train_y), calib, seed, name)
        calib_x = list(data.train_x[torch.from_numpy(idx)].numpy())
        vx, vy = data.val_x[:max_val].numpy(), data.val_y[:max_val].numpy()

        def val() -> Iterable[tuple[np.ndarray, np.ndarray]]:
            return ((vx[i:i + 256], vy[i:i + 256]) for i in range(0, len(vy), 256))

    return quantize_network(trained_spec, model, calib_x, val, output, dataset=name, run_id=run_id, runs=runs,
                            warmup=warmup, method=method, per_channel=per_channel, keep_fp32=keep_fp32,
                            fp32_output=fp32_output, hardswish=hardswish, eval_threads=eval_threads,
                            progress=report)
