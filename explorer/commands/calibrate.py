"""``explorer calibrate DEVICE``: fit a device profile's factors to measured random designs.

Measures ``--n`` (at least 20) random valid designs at ``--input`` (locally, or on a board with
``--remote URL --token TOKEN``; ``--rounds`` interleaved passes, each design keeping its lowest
median), fits the predictor's factors by non-negative least squares on a
``1 - --holdout`` share of them, reports the held-out error, and saves the fitted profile to
``--out`` (default ``runs/devices/DEVICE.yaml``, which ``--predict DEVICE`` then finds first).
Shipped profiles in ``assets/devices`` are never overwritten. ``--int8`` measures each design's
int8 graph (static QDQ quantization) and fits only the profile's ``int8`` section.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="measure random designs and fit a device profile's predictor factors")
    p.add_argument("device", metavar="DEVICE", help="the profile to start from (name or YAML path), e.g. host")
    p.add_argument("--n", type=int, default=30, help="random designs to measure (default 30, at least 20)")
    p.add_argument("--input", type=int, default=160, metavar="SIZE", help="square input size (default 160)")
    p.add_argument("--holdout", type=float, default=0.33, help="share held out for evaluation (default 0.33)")
    p.add_argument("--runs", type=int, default=20, help="timed runs per design (default 20)")
    p.add_argument("--warmup", type=int, default=5, help="warm-up runs per design (default 5)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved measuring passes; each design keeps its "
                   "lowest median (default 2: robust to a busy machine)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--remote", metavar="URL", default=None, help="measure on a board's agent, http://HOST:PORT")
    p.add_argument("--token", default=None, help="the agent's token (default: $EXPLORER_AGENT_TOKEN)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the board per design")
    p.add_argument("--out", default=None, metavar="FILE", help="where to save the fitted profile "
                   "(default runs/devices/DEVICE.yaml)")
    p.add_argument("--int8", action="store_true", help="fit the profile's int8 section from int8 measurements "
                   "(each design quantized: static QDQ, per-channel weights) instead of the fp32 factors")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..latency.agent import check_settings
    from ..latency.calibrate import calibrate, local_measure
    from ..latency.profiles import load_profile, save_profile, user_dir
    from ..presets import assets_dir

    if args.n < 20:
        raise ValueError(f"--n {args.n} is too few; calibrate with at least 20 designs")
    if not 0.1 <= args.holdout <= 0.6:
        raise ValueError(f"--holdout {args.holdout} is out of range; use 0.1 to 0.6")
    check_settings(args.runs, args.warmup, args.threads)
    if not 1 <= args.rounds <= 10:
        raise ValueError(f"--rounds {args.rounds} is out of range; use 1 to 10")
    base = load_profile(args.device)
    out = Path(args.out) if args.out else user_dir() / f"{base.name}.yaml"
    shipped = (assets_dir() / "devices").resolve()
    if out.resolve().parent == shipped:
        raise ValueError(f"{out} is a shipped profile; save the fitted one elsewhere (default {user_dir()})")
    if args.remote:
        from ..latency.client import board_url, health, measure_remote

        token = args.token or os.environ.get("EXPLORER_AGENT_TOKEN", "")
        if not token:
            raise ValueError("--remote needs the agent's token: --token TOKEN or $EXPLORER_AGENT_TOKEN")
        url = board_url(args.remote)
        facts = health(url, token, timeout=min(args.timeout, 10.0))["device"]
        source = f"agent {url} ({facts.get('cpu', '?')}, onnxruntime {facts.get('onnxruntime', '?')})"

        def remote_measure(model: bytes) -> dict[str, Any]:
            return measure_remote(url, token, model, runs=args.runs, warmup=args.warmup, threads=args.threads,
                                  timeout=args.timeout)

        measure: Callable[[bytes], dict[str, Any]] = remote_measure
    else:
        from ..latency.agent import device_facts

        measure = local_measure(runs=args.runs, warmup=args.warmup, threads=args.threads)
        source = f"local onnxruntime ({device_facts()['cpu']})"

    bar = tqdm(total=args.n, desc="measuring designs", unit="design", file=sys.stderr, disable=None, leave=False)

    def progress(done: int, total: int, message: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(message[:40], refresh=True)

    try:
        result = calibrate(base, measure, n=args.n, input_size=args.input, holdout=args.holdout, seed=args.seed,
                           threads=args.threads, source=source, progress=progress, rounds=args.rounds,
                           int8=args.int8)
    finally:
        bar.close()
    path = save_profile(result.profile, out)
    report: dict[str, Any] = {
        "device": result.profile.name, "saved": str(path), "fit": len(result.fit), "held_out": len(result.held_out),
        "within_10pct": result.within_10pct, "median_abs_error_pct": result.median_abs_error_pct,
        "source": source, "int8": args.int8,
        "held_out_designs": [{"name": s.name, "measured_ms": s.measured_ms, "predicted_ms": p}
                             for s, p in zip(result.held_out, result.predicted_ms, strict=True)],
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"calibrated {result.profile.name}{' (int8 section)' if args.int8 else ''} on {len(result.fit)} designs "
          f"({source}); held out {len(result.held_out)}:")
    print(f"  {result.within_10pct:.0%} within ±10 % of measured, median |error| {result.median_abs_error_pct:.1f} %")
    for row in report["held_out_designs"]:
        err = 100 * (row["predicted_ms"] - row["measured_ms"]) / row["measured_ms"]
        print(f"  {row['name']:32s} measured {row['measured_ms']:8.3f} ms  predicted {row['predicted_ms']:8.3f} ms "
              f"({err:+.1f} %)")
    print(f"saved {path}")
    return 0
