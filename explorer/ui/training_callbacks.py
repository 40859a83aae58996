"""Callbacks of the training tab: plain functions the tests call without a browser.

``on_start_training`` is a generator: it trains the current design in a background thread and
yields ``(status markdown, loss figure, accuracy figure)`` each time the run logs a point, so the
browser shows live curves (``explorer.charts.loss_figure`` and ``accuracy_figure``).
``on_cancel_training`` sets the run's ``threading.Event``; the loop reads it every step, so the
run stops within a step (well under a second for the designs at 32²), then evaluates, saves its
weights and is stored as ``cancelled``. Runs go to :func:`ui_store` (``Store()``:
``$EXPLORER_DB`` or ``runs/explorer.sqlite``). One run at a time per browser session.

A dataset on the server's disk (an ImageFolder tree or CIFAR-10's python batches, as
``explorer train --dataset PATH`` takes) may be trained on only from under the data root the
server was started with (``explorer ui --data-root DIR``, i.e. ``$EXPLORER_DATA_ROOT``): the folder
a browser names is resolved (links followed) and refused unless it is a directory inside that
root, so no browser can make the server read a file anywhere else. Without a data root, only
the built-in datasets can be picked.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..charts import Figure, accuracy_figure, loss_figure
from ..spec import SpecError
from ..store import StepRow, Store, default_db_path
from .state import load_state

__all__ = ["DATASETS", "DATA_ROOT_ENV", "MAX_UI_STEPS", "active_sessions", "data_root", "dataset_folder",
           "on_cancel_training", "on_start_training", "ui_store"]

#: datasets the browser may pick by name; a folder on the server only from under ``data_root()``
DATASETS = ["digits", "shapes"]
#: where the server's datasets lie (``explorer ui --data-root DIR`` sets it); unset: no folder may be named
DATA_ROOT_ENV = "EXPLORER_DATA_ROOT"
MAX_UI_STEPS = 20_000

_STORES: dict[str, Store] = {}
_STORES_LOCK = threading.Lock()


def ui_store(path: str | Path | None = None) -> Store:
    """The store the UI uses: one shared ``Store`` per database path.

    The default path is ``$EXPLORER_DB``, else ``runs/explorer.sqlite``.
    """
    key = str(Path(path).expanduser().resolve() if path is not None else default_db_path().resolve())
    with _STORES_LOCK:
        if key not in _STORES:
            _STORES[key] = Store(key)
        return _STORES[key]


@dataclass
class _Session:
    cancel: threading.Event = field(default_factory=threading.Event)
    points: queue.Queue[StepRow] = field(default_factory=queue.Queue)
    result: Any = None
    error: str | None = None


_ACTIVE: dict[str, _Session] = {}
_ACTIVE_LOCK = threading.Lock()


def active_sessions() -> list[str]:
    """Sessions with a run in progress."""
    with _ACTIVE_LOCK:
        return list(_ACTIVE)


def data_root() -> Path | None:
    """The directory under which the browser may name dataset folders (``$EXPLORER_DATA_ROOT``), if any."""
    text = os.environ.get(DATA_ROOT_ENV, "").strip()
    if not text:
        return None
    root = Path(text).expanduser()
    return Path(os.path.realpath(root)) if root.is_dir() else None


def dataset_folder(text: str, root: Path | None = None) -> Path:
    """A dataset folder a browser named -> its real path inside the data root; ``ValueError`` (one line) otherwise.

    ``text`` is relative to the root (``cifar10``) or absolute; links are followed before the check,
    so neither ``..`` nor a link leads out. Nothing is read here but the directory's own entry.
    """
    root = root if root is not None else data_root()
    if root is None:
        raise ValueError("this server has no data root, so no folder can be named; start it with "
                         "`explorer ui --data-root DIR` (or use digits / shapes, or `explorer train --dataset PATH`)")
    if len(text) > 1024 or "\0" in text:
        raise ValueError("that folder name is not a path; give a folder under the data root, e.g. cifar10")
    real_root = Path(os.path.realpath(root))
    candidate = Path(text).expanduser()
    real = Path(os.path.realpath(candidate if candidate.is_absolute() else real_root / candidate))
    if real == real_root or not real.is_relative_to(real_root):
        raise ValueError(f"{text!r} is not inside the data root {real_root}; name a folder under it, e.g. cifar10")
    if not real.is_dir():
        raise ValueError(f"there is no folder {text!r} under the data root {real_root}")
    return real


def _int(value: Any, name: str, lo: int, hi: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number from {lo} to {hi}") from None
    if number != int(number) or not lo <= number <= hi:
        raise ValueError(f"{name} {value} is out of range; use a whole number from {lo} to {hi}")
    return int(number)


def _status(session: _Session, curve: list[StepRow], total: int, name: str) -> str:
    if not curve:
        return f"Training **{name}**: preparing data and model…"
    p = curve[-1]
    acc = next((q.val_accuracy for q in reversed(curve) if q.val_accuracy is not None), None)
    bits = [f"step {p.step} / {total}", f"{p.seconds:.1f} s"]
    if p.train_loss is not None:
        bits.append(f"loss {p.train_loss:.3f}")
    if acc is not None:
        bits.append(f"val accuracy {100 * acc:.1f} %")
    state = "cancelling" if session.cancel.is_set() else "training"
    return f"**{name}** {state}: " + ", ".join(bits)


def on_start_training(
    spec_yaml: str,
    dataset: str = "digits",
    steps: Any = 100,
    input_size: Any = 32,
    seed: Any = 0,
    session: str = "local",
    store: Store | None = None,
    poll_s: float = 0.2,
    folder: str | None = None,
) -> Iterator[tuple[str, Figure, Figure]]:
    """Train the design in ``spec_yaml``; yield (status, loss figure, accuracy figure) as the run logs.

    A mistake (an invalid design, a bad number, a run already going) yields one status line and stops.
    """
    empty = (loss_figure([]), accuracy_figure([]))
    try:
        spec = load_state(spec_yaml or "")
        if folder and folder.strip():  # a folder under the data root: ImageFolder or CIFAR-10 batches
            dataset = str(dataset_folder(folder.strip()))
        elif dataset not in DATASETS:
            raise ValueError(f"dataset {dataset!r}: pick one of {', '.join(DATASETS)}")
        n_steps = _int(steps, "steps", 1, MAX_UI_STEPS)
        size = _int(input_size, "input size", 16, 256)
        seed_ = _int(seed, "seed", 0, 2**31 - 1)
        from ..train import make_config

        config = make_config(dataset=dataset, steps=n_steps, input_size=size, seed=seed_,
                             log_every=max(1, min(10, n_steps // 20)))
    except (SpecError, ValueError) as exc:
        yield f"**Cannot train:** {exc}", *empty
        return
    run = _Session()
    with _ACTIVE_LOCK:
        if session in _ACTIVE:
            yield "**A run is already going in this session**; cancel it first.", *empty
            return
        _ACTIVE[session] = run
    store = store if store is not None else ui_store()

    def work() -> None:
        from ..train import train

        try:
            run.result = train(spec, config, on_step=run.points.put, cancel=run.cancel, store=store)
        except Exception as exc:  # noqa: BLE001 - shown to the user as one line
            run.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, (SpecError, ValueError)) else str(exc)

    thread = threading.Thread(target=work, name=f"train-{session}", daemon=True)
    curve: list[StepRow] = []
    try:
        thread.start()
        yield _status(run, curve, n_steps, spec.name), *empty
        while thread.is_alive() or not run.points.empty():
            try:
                curve.append(run.points.get(timeout=poll_s))
            except queue.Empty:
                continue
            while not run.points.empty():
                curve.append(run.points.get_nowait())
            yield _status(run, curve, n_steps, spec.name), loss_figure(curve), accuracy_figure(curve)
        thread.join()
        if run.error is not None:
            yield f"**Training failed:** {run.error}", loss_figure(curve), accuracy_figure(curve)
            return
        r = run.result
        verb = "cancelled; it keeps what it learned" if r.status == "cancelled" else r.status
        acc = f"{100 * r.val_accuracy:.1f} %" if r.val_accuracy is not None else "n/a"
        loss = f"{r.final_train_loss:.3f}" if r.final_train_loss is not None else "n/a"
        message = (f"**Run {r.run_id} {verb}**: {r.steps} steps in {r.seconds:.1f} s ({r.images_per_s:.0f} images/s "
                   f"on {r.device}), val accuracy **{acc}**, final train loss {loss}. Weights: `{r.weights_path}`.")
        yield message, loss_figure(r.curve), accuracy_figure(r.curve)
    finally:
        if thread.is_alive():  # the browser went away mid-run: stop it; it keeps what it learned
            run.cancel.set()
        with _ACTIVE_LOCK:
            if _ACTIVE.get(session) is run:
                del _ACTIVE[session]


def on_cancel_training(session: str = "local") -> str:
    """Ask the session's run to stop after its current step (it is evaluated and saved)."""
    with _ACTIVE_LOCK:
        run = _ACTIVE.get(session)
    if run is None:
        return "No run is going."
    run.cancel.set()
    return "Cancelling: the run stops after this step, then evaluates and saves what it learned…"
