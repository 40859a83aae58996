"""Callbacks of the latency tab: plain functions from the tab's inputs to its new values.

Each returns ``{"status": markdown, "chart": plotly figure | None, "table": rows, "result": dict}``
and never raises: a user's mistake or an unreachable board becomes a one-line message in
``status`` (``⚠ ...``), never a traceback. ``explorer.ui.latency_tab`` only wires them to
components; the tests call them directly.

- ``on_measure_local``: export the current design (reparameterised, batch 1) and time it in
  ONNX Runtime on this machine (warm-up, ``runs`` timed runs, median / p90 / cv);
- ``on_measure_board``: the same on a board through its agent (``/health`` first, with a short
  time-out, so an unreachable board is reported in seconds, then ``/measure``);
- ``on_predict``: the per-layer roofline of a device profile, summed per unit.

With ``compare`` the presets are measured (or predicted) the same way and drawn beside the
design on a latency-vs-MACs chart (``explorer.charts.latency_figure``); preset measurements are
cached per process and setting.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from ..charts import LatencyPoint, latency_figure
from ..design import load_preset
from ..presets import list_presets
from ..spec import ArchitectureSpec, SpecError
from .render import Progress
from .state import load_state
from .worker import analyze_bounded

__all__ = ["PROFILE_DEFAULT", "PROFILE_HEADERS", "TABLE_HEADERS", "on_measure_board", "on_measure_local", "on_predict",
           "on_profile",
           "profile_choices"]

PROFILE_DEFAULT = "host"
TABLE_HEADERS = ["unit", "layers", "MACs (M)", "predicted ms"]

#: (where, preset, runs, warmup, threads) -> stats of a preset measured in this process
_MEASURED: dict[tuple[str, str, int, int, int], dict[str, Any]] = {}


def profile_choices() -> list[str]:
    """Device profiles for the dropdown (fitted ones in ``runs/devices`` and shipped ones)."""
    from ..latency.profiles import list_profiles

    return list_profiles()


def _noop(_fraction: float, _desc: str) -> None:
    return None


def _error(exc: BaseException) -> dict[str, Any]:
    text = str(exc).strip().replace("\n", " ") or type(exc).__name__
    return {"status": f"⚠ {html.escape(text)}", "chart": None, "table": [], "result": {}}


@lru_cache(maxsize=64)
def _gmacs(spec_json: str) -> float:
    return analyze_bounded(ArchitectureSpec.model_validate_json(spec_json)).macs / 1e9


def _point(name: str, spec: ArchitectureSpec, ms: float, kind: str, design: bool) -> LatencyPoint:
    return {"name": name, "gmacs": _gmacs(spec.model_dump_json()), "ms": ms, "kind": kind, "design": design}


def _preset_names(compare: bool, presets: Sequence[str] | None) -> list[str]:
    return list(presets if presets is not None else list_presets()) if compare else []


def _stats_line(stats: dict[str, Any]) -> str:
    d = stats.get("device", {})
    return (f"median **{stats['median_ms']:.2f} ms**, p90 {stats['p90_ms']:.2f} ms, cv {stats['cv']:.3f} "
            f"({stats['runs']} runs, {stats['threads']} thread(s)) on {html.escape(str(d.get('cpu', '?')))} "
            f"({html.escape(str(d.get('machine', '?')))}, onnxruntime {html.escape(str(d.get('onnxruntime', '?')))})")


def _measure_all(
    spec: ArchitectureSpec,
    measure: Callable[[ArchitectureSpec], dict[str, Any]],
    where: str,
    names: list[str],
    key: tuple[int, int, int],
    progress: Progress,
) -> dict[str, Any]:
    total = 1 + len(names)
    progress(0.0, f"measuring {spec.name}")
    stats = measure(spec)
    points = [_point(spec.name, spec, stats["median_ms"], f"measured {where}", True)]
    for i, name in enumerate(names, 1):
        progress(i / total, f"measuring preset {name}")
        cache_key = (where, name, *key)
        if cache_key not in _MEASURED:
            _MEASURED[cache_key] = measure(load_preset(name))
        points.append(_point(name, load_preset(name), _MEASURED[cache_key]["median_ms"], f"measured {where}", False))
    progress(1.0, "done")
    return {"status": f"**{html.escape(spec.name)}** measured {html.escape(where)}: {_stats_line(stats)}",
            "chart": latency_figure(points, f"Measured {where}"), "table": [], "result": stats}


def on_measure_local(spec_yaml: str, runs: float = 50, threads: float = 1, compare: bool = False,
                     progress: Progress | None = None, presets: Sequence[str] | None = None) -> dict[str, Any]:
    """Time the design (and, with ``compare``, the presets) in ONNX Runtime on this machine."""
    from ..latency.agent import check_settings
    from ..latency.measure import measure_local

    progress = progress or _noop
    try:
        runs_i, threads_i = int(runs), int(threads)
        check_settings(runs_i, 5, threads_i)
        spec = load_state(spec_yaml)
        return _measure_all(spec, lambda s: measure_local(s, runs=runs_i, warmup=5, threads=threads_i), "here",
                            _preset_names(compare, presets), (runs_i, 5, threads_i), progress)
    except (SpecError, ValueError, FileNotFoundError, OSError) as exc:
        return _error(exc)
    except Exception as exc:  # noqa: BLE001 - never a traceback on the page: one line names the failure
        return _error(RuntimeError(f"measurement failed: {type(exc).__name__}: {exc}"))


def on_measure_board(spec_yaml: str, host: str, port: float, token: str, runs: float = 50, threads: float = 1,
                     compare: bool = False, progress: Progress | None = None, presets: Sequence[str] | None = None,
                     timeout: float = 300.0) -> dict[str, Any]:
    """Time the design on an allowed board through its agent (``/health`` first, 5 s time-out)."""
    from ..export import onnx_bytes
    from ..latency.agent import check_settings
    from ..latency.client import measure_remote, reach_board

    progress = progress or _noop
    try:
        runs_i, threads_i = int(runs), int(threads)
        check_settings(runs_i, 5, threads_i)
        spec = load_state(spec_yaml)
        progress(0.0, f"contacting {host}")
        # only the boards the person running the server allows (127.0.0.1:8765, $EXPLORER_BOARDS,
        # explorer ui --board): refused before any connection, whether the port is open or not
        url = reach_board(str(host or ""), int(port) if port else None, token)

        def measure(s: ArchitectureSpec) -> dict[str, Any]:
            return measure_remote(url, token, onnx_bytes(s), runs=runs_i, warmup=5, threads=threads_i,
                                  timeout=timeout)

        return _measure_all(spec, measure, f"on {url}", _preset_names(compare, presets), (runs_i, 5, threads_i),
                            progress)
    except (SpecError, ValueError, FileNotFoundError, OSError) as exc:
        return _error(exc)
    except Exception as exc:  # noqa: BLE001 - never a traceback on the page: one line names the failure
        return _error(RuntimeError(f"board measurement failed: {type(exc).__name__}: {exc}"))


def on_predict(spec_yaml: str, profile_name: str, compare: bool = True, progress: Progress | None = None,
               presets: Sequence[str] | None = None) -> dict[str, Any]:
    """Predict the design's latency with a device profile; per-unit table; presets alongside."""
    from ..latency.predictor import predict, predict_units
    from ..latency.profiles import load_profile

    progress = progress or _noop
    try:
        if not profile_name:
            raise ValueError("choose a device profile")
        profile = load_profile(profile_name)
        spec = load_state(spec_yaml)
        progress(0.0, f"predicting {spec.name}")
        units = predict_units(spec, profile)
        total = sum(u.ms for u in units) + profile.const_ms
        kind = f"predicted: {profile.name}"
        points = [_point(spec.name, spec, total, kind, True)]
        names = _preset_names(compare, presets)
        for i, name in enumerate(names, 1):
            progress(i / (1 + len(names)), f"predicting preset {name}")
            points.append(_point(name, load_preset(name), predict(load_preset(name), profile), kind, False))
        progress(1.0, "done")
        fitted = (f"calibrated on {profile.calibration.samples} designs: {profile.calibration.within_10pct:.0%} "
                  f"of held-out designs within ±10 %" if profile.calibration else
                  "**not calibrated**: a roofline starting point (run `explorer calibrate`)")
        # the design table's MACs, per unit (remembered from the Design tab's count)
        macs: dict[Any, int] = {row.address: row.macs for row in analyze_bounded(spec).blocks}
        rows: list[dict[str, Any]] = [{"name": u.name, "layers": u.layers, "macs": macs.get(u.address, 0), "ms": u.ms}
                                      for u in units]
        table = [[r["name"], r["layers"], round(r["macs"] / 1e6, 2), round(r["ms"], 3)] for r in rows]
        return {"status": f"**{html.escape(spec.name)}** on **{html.escape(profile.name)}**: predicted "
                          f"**{total:.2f} ms** ({fitted})",
                "chart": latency_figure(points, f"Predicted for {profile.name}"), "table": table,
                "result": {"device": profile.name, "predicted_ms": total, "units": rows}}
    except (SpecError, ValueError, FileNotFoundError, OSError) as exc:
        return _error(exc)
    except Exception as exc:  # noqa: BLE001 - never a traceback on the page: one line names the failure
        return _error(RuntimeError(f"prediction failed: {type(exc).__name__}: {exc}"))


PROFILE_HEADERS = ["unit", "op type", "fp32 ms", "int8 ms"]


def on_profile(spec_yaml: str, int8: bool = True, runs: float = 20, threads: float = 1,
               progress: Progress | None = None) -> dict[str, Any]:
    """Where the time goes: ONNX Runtime's profiler per op type and unit, fp32 (and int8 beside it).

    The int8 graph is static QDQ quantization calibrated on random inputs (right for timing, not
    for accuracy: the Quantize section calibrates on real images). ``result``: the rows as dicts.
    """
    from ..charts import op_time_figure
    from ..export import onnx_bytes
    from ..latency.agent import check_settings
    from ..latency.op_profile import compare_ops, profile_ops, quantize_for_timing
    from ..spec import expand_units

    progress = progress or _noop
    try:
        runs_i, threads_i = int(runs), int(threads)
        check_settings(runs_i, 3, threads_i)
        spec = load_state(spec_yaml)
        progress(0.0, f"exporting {spec.name}")
        fp32 = onnx_bytes(spec)
        progress(0.2, "profiling fp32")
        ops32 = profile_ops(fp32, runs=runs_i, warmup=3, threads=threads_i)
        ops8: list[Any] = []
        if int8:
            progress(0.45, "quantizing (static QDQ, random calibration)")
            model8 = quantize_for_timing(fp32)
            progress(0.75, "profiling int8")
            ops8 = profile_ops(model8, runs=runs_i, warmup=3, threads=threads_i)
        rows = compare_ops(ops32, ops8, {u.module_path: u.name for u in expand_units(spec)})
        progress(1.0, "done")
        t32, t8 = sum(r.fp32_ms for r in rows), sum(r.int8_ms for r in rows)
        status = (f"**{html.escape(spec.name)}**: kernel time per inference fp32 **{t32:.2f} ms**"
                  + (f", int8 **{t8:.2f} ms** ({t32 / t8:.2f}× speed-up)" if int8 and t8 else "")
                  + f" (ONNX Runtime profiler, {runs_i} runs, {threads_i} thread(s); int8 calibrated on random "
                    "inputs: for timing only)")
        table = [[r.unit, r.op_type, round(r.fp32_ms, 3), round(r.int8_ms, 3)] for r in rows]
        return {"status": status, "chart": op_time_figure(rows), "table": table,
                "result": {"fp32_ms": t32, "int8_ms": t8, "rows": [r.__dict__ for r in rows]}}
    except (SpecError, ValueError, FileNotFoundError, OSError) as exc:
        return _error(exc)
    except Exception as exc:  # noqa: BLE001 - never a traceback on the page: one line names the failure
        return _error(RuntimeError(f"profiling failed: {type(exc).__name__}: {exc}"))
