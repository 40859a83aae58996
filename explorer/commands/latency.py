"""``explorer latency SPEC``: measure a design in ONNX Runtime here or on a board, or predict it.

- local (default): ``--threads 1 --runs 50 --warmup 10``: the design is exported (reparameterised,
  batch 1), then ``warmup`` untimed and ``runs`` timed runs; median, p90 and coefficient of
  variation (std / mean) of the timed runs; a progress bar on stderr for 20 runs or more;
- ``--remote http://HOST:PORT --token TOKEN``: the same measurement by a board's agent
  (``explorer agent`` / ``python3 agent.py``); the token may also come from ``$EXPLORER_AGENT_TOKEN``.
  No allow-list applies here (unlike the UI's ``--board``): the address is the user's own choice;
- ``--predict DEVICE``: the per-layer roofline of a device profile (no measurement), with the
  time per unit.

``--json`` prints one object: ``median_ms, p90_ms, cv, runs, threads, backend, device`` for a
measurement; ``predicted_ms, device, backend ("predictor"), calibrated, units`` for a prediction.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..design import load_design, retarget

#: the keys of ``--json`` for a measurement (local or remote)
JSON_KEYS = ("median_ms", "p90_ms", "cv", "runs", "threads", "backend", "device")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("latency", help="latency in ONNX Runtime: here, on a board (--remote), or predicted (--predict)")
    p.add_argument("spec", metavar="SPEC", help="a preset name or a YAML/JSON spec path")
    p.add_argument("--input", type=int, default=None, metavar="SIZE", help="square input size (default: the spec's)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    p.add_argument("--runs", type=int, default=50, help="timed runs (default 50)")
    p.add_argument("--warmup", type=int, default=10, help="untimed warm-up runs (default 10)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--remote", metavar="URL", default=None, help="measure on the board agent at http://HOST:PORT")
    where.add_argument("--predict", metavar="DEVICE", default=None,
                       help="predict with a device profile (name or YAML path) instead of measuring")
    p.add_argument("--token", default=None, help="the agent's token (default: $EXPLORER_AGENT_TOKEN)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the board (default 300)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..latency.agent import check_settings

    check_settings(args.runs, args.warmup, args.threads)  # ValueError: one line on stderr, exit 2
    spec = load_design(args.spec)
    if args.input:
        spec = retarget(spec, input_size=args.input)
    if args.predict:
        return _predict(spec, args)
    stats = _remote(spec, args) if args.remote else _local(spec, args)
    if args.json:
        print(json.dumps({k: stats[k] for k in JSON_KEYS}))
        return 0
    d = stats["device"]
    where = f"the board at {args.remote}" if args.remote else "this machine"
    print(f"{spec.name} on {where}: median {stats['median_ms']:.3f} ms, p90 {stats['p90_ms']:.3f} ms, "
          f"cv {stats['cv']:.3f} ({stats['runs']} runs after {stats.get('warmup', args.warmup)} warm-up, "
          f"{stats['threads']} thread(s), {stats['backend']})")
    print(f"  device: {d.get('cpu', '?')} ({d.get('machine', '?')}, {d.get('cores', '?')} cores), "
          f"onnxruntime {d.get('onnxruntime', '?')}")
    return 0


def _local(spec: Any, args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from ..latency.measure import measure_local

    # tqdm: None = shown on a terminal only; never with --json or for a short run
    with tqdm(total=args.runs, desc=f"timing {spec.name}", unit="run", leave=False, file=sys.stderr,
              disable=True if (args.json or args.runs < 20) else None) as bar:
        return measure_local(spec, runs=args.runs, warmup=args.warmup, threads=args.threads,
                             progress=lambda done, total: bar.update(done - bar.n))


def _remote(spec: Any, args: argparse.Namespace) -> dict[str, Any]:
    from ..export import onnx_bytes
    from ..latency.client import board_url, health, measure_remote

    token = args.token or os.environ.get("EXPLORER_AGENT_TOKEN", "")
    if not token:
        raise ValueError("--remote needs the agent's token: --token TOKEN or $EXPLORER_AGENT_TOKEN")
    url = board_url(args.remote)
    health(url, token, timeout=min(10.0, args.timeout))  # unreachable board or wrong token: told before exporting
    model = onnx_bytes(spec)
    if not args.json:
        print(f"sending {spec.name} ({len(model) / 2**20:.1f} MiB of ONNX) to {url} for {args.warmup} + {args.runs} "
              f"runs ...", file=sys.stderr, flush=True)
    return measure_remote(url, token, model, runs=args.runs, warmup=args.warmup, threads=args.threads,
                          timeout=args.timeout)


def _predict(spec: Any, args: argparse.Namespace) -> int:
    from ..analysis import analyze
    from ..latency.predictor import predict_units
    from ..latency.profiles import load_profile

    profile = load_profile(args.predict)
    units = predict_units(spec, profile)
    macs: dict[Any, int] = {row.address: row.macs for row in analyze(spec).blocks}  # the design table's, per unit
    rows: list[dict[str, Any]] = [{"name": u.name, "layers": u.layers, "macs": macs.get(u.address, 0), "ms": u.ms}
                                  for u in units]
    total = sum(u.ms for u in units) + profile.const_ms
    if args.json:
        print(json.dumps({"predicted_ms": total, "device": profile.name, "backend": "predictor",
                          "calibrated": profile.calibration is not None, "units": rows}))
        return 0
    cal = profile.calibration
    state = (f"calibrated on {cal.samples} designs, {cal.within_10pct:.0%} of {cal.held_out} held out within ±10 %"
             if cal else "not calibrated: a roofline starting point; run `explorer calibrate`")
    print(f"{spec.name} on {profile.name}: predicted {total:.3f} ms ({state})")
    print(f"\n  {'unit':8s} {'layers':>6s} {'MMACs':>9s} {'ms':>8s}")
    for r in rows:
        print(f"  {r['name']:8s} {r['layers']:6d} {r['macs'] / 1e6:9.2f} {r['ms']:8.3f}")
    print(f"  {'fixed':8s} {'':6s} {'':9s} {profile.const_ms:8.3f}")
    return 0
