"""``explorer latency SPEC``: measure a design in ONNX Runtime here or on a board, or predict it.

- local (default): ``--threads 1 --runs 50 --warmup 10``: the design is exported (reparameterised,
  batch 1), then ``warmup`` untimed and ``runs`` timed runs; median, p90 and coefficient of
  variation (std / mean) of the timed runs; a progress bar on stderr for 20 runs or more;
- ``--remote http://HOST:PORT --token TOKEN``: the same measurement by a board's agent
  (``explorer agent`` / ``python3 agent.py``); the token may also come from ``$EXPLORER_AGENT_TOKEN``.
  No allow-list applies here (unlike the UI's ``--board``): the address is the user's own choice;
- ``--predict DEVICE``: the per-layer roofline of a device profile (no measurement), with the
  time per unit;
- ``--profile``: where the time goes, from ONNX Runtime's own profiler: kernel time per op type
  and per unit (``explorer.latency.op_profile``);
- ``--int8``: the design's int8 graph (static QDQ quantization calibrated on random inputs, right
  for timing only): measured here or on the board, predicted with the profile's ``int8`` section,
  or profiled beside fp32.

``SPEC`` may also be an ONNX file (``FILE.onnx``, e.g. an int8 model from ``explorer quantize``): it is
timed as it is, here or with ``--remote``; a model that keeps tensors in external data files is refused.

``--json`` prints one object: ``median_ms, p90_ms, cv, runs, threads, backend, device`` for a
measurement; ``predicted_ms, device, backend ("predictor"), calibrated, units`` for a prediction.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..design import load_design, retarget

#: the keys of ``--json`` for a measurement (local or remote)
JSON_KEYS = ("median_ms", "p90_ms", "cv", "runs", "threads", "backend", "device")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("latency", help="latency in ONNX Runtime: here, on a board (--remote), or predicted (--predict)")
    p.add_argument("spec", metavar="SPEC", help="a preset name, a YAML/JSON spec path or an ONNX file (FILE.onnx)")
    p.add_argument("--input", type=int, default=None, metavar="SIZE", help="square input size (default: the spec's)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    p.add_argument("--runs", type=int, default=50, help="timed runs (default 50)")
    p.add_argument("--warmup", type=int, default=10, help="untimed warm-up runs (default 10)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--remote", metavar="URL", default=None, help="measure on the board agent at http://HOST:PORT")
    where.add_argument("--predict", metavar="DEVICE", default=None,
                       help="predict with a device profile (name or YAML path) instead of measuring")
    where.add_argument("--profile", action="store_true",
                       help="where the time goes: ONNX Runtime's profiler per op type and unit (fp32; with --int8 "
                            "fp32 beside int8)")
    p.add_argument("--int8", action="store_true",
                   help="the int8 graph (static QDQ quantization, calibrated on random inputs: right for timing, "
                        "not for accuracy; `explorer quantize` for that): measure it, predict it with the profile's "
                        "int8 section, or profile it beside fp32")
    p.add_argument("--token", default=None, help="the agent's token (default: $EXPLORER_AGENT_TOKEN)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the board (default 300)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..latency.agent import check_settings

    check_settings(args.runs, args.warmup, args.threads)  # ValueError: one line on stderr, exit 2
    if args.spec.lower().endswith(".onnx"):
        return _onnx_file(args)
    spec = load_design(args.spec)
    if args.input:
        spec = retarget(spec, input_size=args.input)
    if args.predict:
        return _predict(spec, args)
    if args.profile:
        return _profile(spec, args)
    stats = _remote(spec, args) if args.remote else _local(spec, args)
    if args.json:
        print(json.dumps({k: stats[k] for k in JSON_KEYS}))
        return 0
    d = stats["device"]
    where = f"the board at {args.remote}" if args.remote else "this machine"
    print(f"{spec.name}{' (int8)' if args.int8 else ''} on {where}: median {stats['median_ms']:.3f} ms, "
          f"p90 {stats['p90_ms']:.3f} ms, "
          f"cv {stats['cv']:.3f} ({stats['runs']} runs after {stats.get('warmup', args.warmup)} warm-up, "
          f"{stats['threads']} thread(s), {stats['backend']})")
    print(f"  device: {d.get('cpu', '?')} ({d.get('machine', '?')}, {d.get('cores', '?')} cores), "
          f"onnxruntime {d.get('onnxruntime', '?')}")
    return 0


#: the largest tensor an ONNX file may hold to be timed here (the agent applies its own memory limit)
MAX_ONNX_TENSOR_BYTES = 4 << 30


def read_onnx_file(path: str) -> bytes:
    """A self-contained ONNX file's bytes; ``ValueError`` (one line) for a missing file, external data or no model."""
    from ..latency.agent import check_model

    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"no ONNX file at {file}")
    model = file.read_bytes()
    try:
        check_model(model, MAX_ONNX_TENSOR_BYTES)  # external data, oversized tensors, not a model: refused here
    except ValueError as exc:
        raise ValueError(f"{file.name}: {exc}") from None
    return model


def _onnx_file(args: argparse.Namespace) -> int:
    if args.int8:
        raise ValueError("--int8 quantizes a design; an ONNX file is timed as it is "
                         "(quantize it with `explorer quantize`)")
    if args.profile:
        raise ValueError("--profile needs a design (preset or spec), not an ONNX file: its units name the rows")
    if args.predict:
        raise ValueError("--predict needs a design (preset or spec), not an ONNX file: the predictor reads the design")
    if args.input:
        raise ValueError("--input cannot resize an ONNX file; export the design at that size first")
    model = read_onnx_file(args.spec)
    name = Path(args.spec).name
    if args.remote:
        stats = _remote_bytes(name, model, args)
    else:
        from tqdm import tqdm

        from ..latency.measure import measure_onnx

        with tqdm(total=args.runs, desc=f"timing {name}", unit="run", leave=False, file=sys.stderr,
                  disable=True if (args.json or args.runs < 20) else None) as bar:
            try:
                stats = measure_onnx(model, runs=args.runs, warmup=args.warmup, threads=args.threads,
                                     progress=lambda done, total: bar.update(done - bar.n))
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
    if args.json:
        print(json.dumps({k: stats[k] for k in JSON_KEYS}))
        return 0
    where = f"the board at {args.remote}" if args.remote else "this machine"
    print(f"{name} on {where}: median {stats['median_ms']:.3f} ms, p90 {stats['p90_ms']:.3f} ms, cv {stats['cv']:.3f} "
          f"({stats['runs']} runs, {stats['threads']} thread(s), {stats['backend']})")
    return 0


def _local(spec: Any, args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from ..latency.measure import measure_local

    # tqdm: None = shown on a terminal only; never with --json or for a short run
    with tqdm(total=args.runs, desc=f"timing {spec.name}", unit="run", leave=False, file=sys.stderr,
              disable=True if (args.json or args.runs < 20) else None) as bar:
        if args.int8:
            from ..export import onnx_bytes
            from ..latency.measure import measure_onnx
            from ..latency.op_profile import quantize_for_timing

            return measure_onnx(quantize_for_timing(onnx_bytes(spec)), runs=args.runs, warmup=args.warmup,
                                threads=args.threads, progress=lambda done, total: bar.update(done - bar.n))
        return measure_local(spec, runs=args.runs, warmup=args.warmup, threads=args.threads,
                             progress=lambda done, total: bar.update(done - bar.n))


def _remote(spec: Any, args: argparse.Namespace) -> dict[str, Any]:
    from ..export import onnx_bytes

    if args.int8:
        from ..latency.op_profile import quantize_for_timing

        return _remote_bytes(spec.name, None, args, lambda: quantize_for_timing(onnx_bytes(spec)))
    return _remote_bytes(spec.name, None, args, lambda: onnx_bytes(spec))


def _remote_bytes(name: str, model: bytes | None, args: argparse.Namespace,
                  make: Callable[[], bytes] | None = None) -> dict[str, Any]:
    from ..latency.client import board_url, health, measure_remote

    token = args.token or os.environ.get("EXPLORER_AGENT_TOKEN", "")
    if not token:
        raise ValueError("--remote needs the agent's token: --token TOKEN or $EXPLORER_AGENT_TOKEN")
    url = board_url(args.remote)
    health(url, token, timeout=min(10.0, args.timeout))  # unreachable board or wrong token: told before exporting
    if model is None:
        assert make is not None
        model = make()
    if not args.json:
        print(f"sending {name} ({len(model) / 2**20:.1f} MiB of ONNX) to {url} for {args.warmup} + {args.runs} "
              f"runs ...", file=sys.stderr, flush=True)
    return measure_remote(url, token, model, runs=args.runs, warmup=args.warmup, threads=args.threads,
                          timeout=args.timeout)


def _predict(spec: Any, args: argparse.Namespace) -> int:
    from ..analysis import analyze
    from ..latency.predictor import predict_units
    from ..latency.profiles import load_profile

    profile = load_profile(args.predict)
    source = ""
    if args.int8:
        source = profile.int8.source if profile.int8 is not None else ""
        profile = profile.int8_profile()  # ValueError (one line) when the profile has no int8 section
    units = predict_units(spec, profile)
    macs: dict[Any, int] = {row.address: row.macs for row in analyze(spec).blocks}  # the design table's, per unit
    rows: list[dict[str, Any]] = [{"name": u.name, "layers": u.layers, "macs": macs.get(u.address, 0), "ms": u.ms}
                                  for u in units]
    total = sum(u.ms for u in units) + profile.const_ms
    if args.json:
        print(json.dumps({"predicted_ms": total, "device": profile.name, "backend": "predictor",
                          "calibrated": profile.calibration is not None, "int8": args.int8, "units": rows}))
        return 0
    cal = profile.calibration
    state = (f"calibrated on {cal.samples} designs, {cal.within_10pct:.0%} of {cal.held_out} held out within ±10 %"
             if cal else "not calibrated: a roofline starting point; run `explorer calibrate`")
    if args.int8 and not cal:
        state = (f"int8 factors not fitted: {source or 'no source given'}; "
                 f"run `explorer calibrate {args.predict} --int8`")
    print(f"{spec.name} on {profile.name}{' in int8' if args.int8 else ''}: predicted {total:.3f} ms ({state})")
    print(f"\n  {'unit':8s} {'layers':>6s} {'MMACs':>9s} {'ms':>8s}")
    for r in rows:
        print(f"  {r['name']:8s} {r['layers']:6d} {r['macs'] / 1e6:9.2f} {r['ms']:8.3f}")
    print(f"  {'fixed':8s} {'':6s} {'':9s} {profile.const_ms:8.3f}")
    return 0


def _profile(spec: Any, args: argparse.Namespace) -> int:
    from ..export import onnx_bytes
    from ..latency.op_profile import compare_ops, profile_ops, quantize_for_timing
    from ..spec import expand_units

    fp32 = onnx_bytes(spec)
    ops32 = profile_ops(fp32, runs=args.runs, warmup=args.warmup, threads=args.threads)
    ops8 = profile_ops(quantize_for_timing(fp32), runs=args.runs, warmup=args.warmup, threads=args.threads) \
        if args.int8 else []
    rows = compare_ops(ops32, ops8, {u.module_path: u.name for u in expand_units(spec)})
    if args.json:
        print(json.dumps({"name": spec.name, "threads": args.threads, "runs": args.runs, "int8": args.int8,
                          "fp32_ms": sum(r.fp32_ms for r in rows), "int8_ms": sum(r.int8_ms for r in rows),
                          "ops": [{"unit": r.unit, "op_type": r.op_type, "fp32_ms": r.fp32_ms, "int8_ms": r.int8_ms,
                                   "fp32_kernels": r.fp32_kernels, "int8_kernels": r.int8_kernels} for r in rows]}))
        return 0
    total32, total8 = sum(r.fp32_ms for r in rows), sum(r.int8_ms for r in rows)
    print(f"{spec.name}: ONNX Runtime profiler, {args.runs} runs after {args.warmup} warm-up, {args.threads} "
          f"thread(s); kernel time per inference fp32 {total32:.3f} ms" +
          (f", int8 {total8:.3f} ms (speed-up {total32 / total8:.2f}×)" if args.int8 and total8 else ""))
    print("\n  by op type (after ONNX Runtime's fusions):")
    by_op: dict[str, list[float]] = {}
    for r in rows:
        cell = by_op.setdefault(r.op_type, [0.0, 0.0])
        cell[0] += r.fp32_ms
        cell[1] += r.int8_ms
    print(f"  {'op type':24s} {'fp32 ms':>9s}" + (f" {'int8 ms':>9s}" if args.int8 else ""))
    for op, (a, b) in sorted(by_op.items(), key=lambda kv: -(kv[1][0] + kv[1][1])):
        print(f"  {op:24s} {a:9.3f}" + (f" {b:9.3f}" if args.int8 else ""))
    print("\n  by unit and op type:")
    print(f"  {'unit':8s} {'op type':24s} {'fp32 ms':>9s}" + (f" {'int8 ms':>9s}" if args.int8 else ""))
    for r in rows:
        print(f"  {r.unit:8s} {r.op_type:24s} {r.fp32_ms:9.3f}" + (f" {r.int8_ms:9.3f}" if args.int8 else ""))
    return 0
