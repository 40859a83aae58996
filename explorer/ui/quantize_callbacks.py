"""Callbacks of the latency tab's "Quantize" section: int8 of the current design, fp32 beside it.

``on_quantize(spec_yaml, source, steps)`` quantizes the design's trained network with
:func:`explorer.quantize.quantize` (static QDQ, per-channel int8 weights, calibrated on 100
training images) from the latest stored run of this design (``source="latest run"``) or from a
short training run recorded in the store (``source="short training"``), and returns
``{"status": markdown, "table": rows, "file": path of the int8 ONNX | None, "result": dict}``.
It never raises: a mistake becomes one ``⚠`` line in ``status``.

With ``on_board`` (and the board's host, port and token, as "Measure on board" takes them), both
graphs are also timed on the board through its agent: only a board the person running the server
allows (``latency.client.allowed_board_url``), checked with ``/health`` *before* anything is
trained or quantized, so a wrong board costs seconds; then fp32, int8, fp32, int8 (two rounds of
``runs`` runs each, the board's median per round, averaged per graph). ``result["board"]`` holds
``{"url", "fp32_ms", "int8_ms", "speedup"}``.
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Any

from ..design import load_design
from ..latency.client import reach_board
from ..quantize import quantize, same_design
from ..spec import ArchitectureSpec, SpecError
from ..store import Store
from .render import Progress
from .state import load_state
from .training_callbacks import ui_store

__all__ = ["BOARD_ROUNDS", "MAX_STEPS", "SOURCES", "TABLE_HEADERS", "latest_run", "on_quantize", "time_on_board"]

SOURCES = ("latest run", "short training")
TABLE_HEADERS = ["graph", "top-1 %", "agreement %", "latency ms (here, 1 thread)", "latency ms (board)", "size MiB"]
BOARD_ROUNDS = 2
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


def time_on_board(url: str, token: str, fp32: bytes, int8: bytes, runs: int = 30,
                  rounds: int = BOARD_ROUNDS, timeout: float = 300.0) -> dict[str, Any]:
    """Both graphs timed by the board's agent, alternating (fp32, int8) ``rounds`` times; mean of its medians."""
    from ..latency.client import measure_remote

    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for _ in range(rounds):
        for name, model in (("fp32", fp32), ("int8", int8)):
            answer = measure_remote(url, token, model, runs=runs, warmup=5, threads=1, timeout=timeout)
            times[name].append(float(answer["median_ms"]))
    fp32_ms, int8_ms = (sum(t) / len(t) for t in (times["fp32"], times["int8"]))
    return {"url": url, "fp32_ms": fp32_ms, "int8_ms": int8_ms, "speedup": fp32_ms / int8_ms if int8_ms else 0.0}


def on_quantize(spec_yaml: str, source: str = "latest run", steps: float = 200, db: str | Path | None = None,
                progress: Progress | None = None, out_dir: str | Path | None = None,
                runs: int = 30, on_board: bool = False, host: str = "", port: float = 8765,
                token: str = "") -> dict[str, Any]:
    """Quantize the design (see the module docstring); the int8 file lands in ``out_dir`` (default: a temp folder)."""
    progress = progress or _noop
    board: dict[str, Any] | None = None
    board_error = ""
    try:
        if source not in SOURCES:
            raise ValueError(f"source {source!r}: choose {' or '.join(SOURCES)}")
        spec = load_state(spec_yaml)
        # before any work: a wrong board costs seconds
        url = reach_board(host, int(port) if port else None, token) if on_board else None
        store = ui_store(db)
        folder = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="explorer-int8-"))
        output = folder / f"{spec.name}-int8.onnx"
        fp32_file = folder / f".{spec.name}-fp32.onnx" if url else None
        work = progress if url is None else (lambda f, d: progress(0.9 * f, d))
        if source == "latest run":
            run_id = latest_run(store, spec)
            if run_id is None:
                raise ValueError(f"no stored run of {spec.name} has weights yet: train it in the Training tab, "
                                 "or choose 'short training'")
            result = quantize(spec, output, run_id=run_id, store=store, runs=runs, fp32_output=fp32_file,
                              progress=work)
        else:
            n = int(steps or 0)
            if not 1 <= n <= MAX_STEPS:
                raise ValueError(f"training steps {n}: use 1 to {MAX_STEPS:,}")
            result = quantize(spec, output, train_steps=n, store=store, runs=runs, fp32_output=fp32_file,
                              progress=work)
        if url is not None and fp32_file is not None:
            progress(0.9, f"timing fp32 and int8 on {url}")
            try:
                board = time_on_board(url, token, fp32_file.read_bytes(), output.read_bytes(), runs=runs)
            except ValueError as exc:  # the board failed mid-way: the results here still stand
                board_error = str(exc).strip().replace("\n", " ")
            finally:
                fp32_file.unlink(missing_ok=True)
            progress(1.0, "done")
    except (SpecError, ValueError, FileNotFoundError, OSError) as exc:
        return _error(exc)
    except Exception as exc:  # noqa: BLE001 - never a traceback on the page: one line names the failure
        return _error(RuntimeError(f"quantization failed: {type(exc).__name__}: {exc}"))
    r = result
    on = board or {}
    table = [["fp32", round(100 * r.fp32_accuracy, 1), 100.0, round(r.fp32_ms, 3),
              round(on["fp32_ms"], 3) if on else "–", round(r.fp32_bytes / 2**20, 2)],
             ["int8", round(100 * r.int8_accuracy, 1), round(100 * r.top1_agreement, 1), round(r.int8_ms, 3),
              round(on["int8_ms"], 3) if on else "–", round(r.int8_bytes / 2**20, 2)]]
    board_note = (f"; on the board ({html.escape(on['url'])}) **{on['speedup']:.2f}×**" if on else
                  f" (⚠ not timed on the board: {html.escape(board_error)})" if board_error else "")
    status = (f"**{html.escape(r.design)}** int8 from run {r.run_id} ({html.escape(r.dataset)}, "
              f"{r.input_size}×{r.input_size}): top-1 {100 * r.fp32_accuracy:.1f} % → {100 * r.int8_accuracy:.1f} %, "
              f"agreement {100 * r.top1_agreement:.1f} % on {r.val_images} images; int8 speed-up **{r.speedup:.2f}×** "
              f"({'faster' if r.speedup >= 1 else 'slower'} than fp32 here){board_note}, file "
              f"{r.fp32_bytes / r.int8_bytes:.1f}× smaller")
    return {"status": status, "table": table, "file": r.path, "result": r.to_json() | ({"board": on} if on else {})}


def _error(exc: BaseException) -> dict[str, Any]:
    text = str(exc).strip().replace("\n", " ") or type(exc).__name__
    return {"status": f"⚠ {html.escape(text)}", "table": [], "file": None, "result": {}}
