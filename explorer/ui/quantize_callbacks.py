"""Callbacks of the latency tab's "Quantize" section: int8 of the current design, fp32 beside it.

``on_quantize(spec_yaml, source, steps)`` quantizes the design's trained network with
:func:`explorer.quantize.quantize` (static QDQ, per-channel int8 weights, calibrated on 100
training images) from the latest stored run of this design (``source="latest run"``) or from a
short training run recorded in the store (``source="short training"``), and returns
``{"status": markdown, "table": rows, "file": path of the int8 ONNX | None, "result": dict}``.
It never raises: a mistake becomes one ``⚠`` line in ``status``.
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Any

from ..design import load_design
from ..quantize import quantize, same_design
from ..spec import ArchitectureSpec, SpecError
from ..store import Store
from .render import Progress
from .state import load_state
from .training_callbacks import ui_store

__all__ = ["MAX_STEPS", "SOURCES", "TABLE_HEADERS", "latest_run", "on_quantize"]

SOURCES = ("latest run", "short training")
TABLE_HEADERS = ["graph", "top-1 %", "agreement %", "latency ms (here, 1 thread)", "size MiB"]
MAX_STEPS = 5_000


def _noop(_fraction: float, _desc: str) -> None:
    return None


def latest_run(store: Store, spec: ArchitectureSpec) -> int | None:
    """The newest run of ``spec`` (any input size or classes) that has weights, or ``None``."""
    for run in store.list_runs(limit=500):
        if not run.weights_path or not Path(run.weights_path).is_file():
            continue
        try:
            design = load_design(store.get_design(run.design_id).spec_yaml)
        except (SpecError, ValueError):
            continue
        if same_design(spec, design):
            return run.id
    return None


def on_quantize(spec_yaml: str, source: str = "latest run", steps: float = 200, db: str | Path | None = None,
                progress: Progress | None = None, out_dir: str | Path | None = None,
                runs: int = 30) -> dict[str, Any]:
    """Quantize the design (see the module docstring); the int8 file lands in ``out_dir`` (default: a temp folder)."""
    progress = progress or _noop
    try:
        if source not in SOURCES:
            raise ValueError(f"source {source!r}: choose {' or '.join(SOURCES)}")
        spec = load_state(spec_yaml)
        store = ui_store(db)
        folder = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="explorer-int8-"))
        output = folder / f"{spec.name}-int8.onnx"
        if source == "latest run":
            run_id = latest_run(store, spec)
            if run_id is None:
                raise ValueError(f"no stored run of {spec.name} has weights yet: train it in the Training tab, "
                                 "or choose 'short training'")
            result = quantize(spec, output, run_id=run_id, store=store, runs=runs, progress=progress)
        else:
            n = int(steps or 0)
            if not 1 <= n <= MAX_STEPS:
                raise ValueError(f"training steps {n}: use 1 to {MAX_STEPS:,}")
            result = quantize(spec, output, train_steps=n, store=store, runs=runs, progress=progress)
    except (SpecError, ValueError, FileNotFoundError, OSError) as exc:
        return _error(exc)
    except Exception as exc:  # noqa: BLE001 - never a traceback on the page: one line names the failure
        return _error(RuntimeError(f"quantization failed: {type(exc).__name__}: {exc}"))
    r = result
    table = [["fp32", round(100 * r.fp32_accuracy, 1), 100.0, round(r.fp32_ms, 3), round(r.fp32_bytes / 2**20, 2)],
             ["int8", round(100 * r.int8_accuracy, 1), round(100 * r.top1_agreement, 1), round(r.int8_ms, 3),
              round(r.int8_bytes / 2**20, 2)]]
    status = (f"**{html.escape(r.design)}** int8 from run {r.run_id} ({html.escape(r.dataset)}, "
              f"{r.input_size}×{r.input_size}): top-1 {100 * r.fp32_accuracy:.1f} % → {100 * r.int8_accuracy:.1f} %, "
              f"agreement {100 * r.top1_agreement:.1f} % on {r.val_images} images; int8 speed-up **{r.speedup:.2f}×** "
              f"({'faster' if r.speedup >= 1 else 'slower'} than fp32 here), file {r.fp32_bytes / r.int8_bytes:.1f}× "
              "smaller")
    return {"status": status, "table": table, "file": r.path, "result": r.to_json()}


def _error(exc: BaseException) -> dict[str, Any]:
    text = str(exc).strip().replace("\n", " ") or type(exc).__name__
    return {"status": f"⚠ {html.escape(text)}", "table": [], "file": None, "result": {}}
