"""``explorer summarize SPEC [--input 224] [--json]``: totals and the per-block table."""

from __future__ import annotations

import argparse
import json

from ..analysis import analyze
from ..design import load_design, retarget


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summarize", help="params, MACs and activation memory of a preset or spec file")
    p.add_argument("spec", metavar="SPEC", help="a preset name or a YAML/JSON spec path")
    p.add_argument("--input", type=int, default=None, metavar="SIZE", help="square input size (default: the spec's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def run(args: argparse.Namespace) -> int:
    spec = load_design(args.spec)
    a = analyze(retarget(spec, input_size=args.input) if args.input else spec)
    if args.json:
        print(json.dumps(a.summary()))
        return 0
    print(f"{a.name}: input {'x'.join(map(str, a.input_shape[1:]))}")
    print(f"  params {a.params:,} ({a.params / 1e6:.3f} M; {a.params_train:,} before re-parameterisation)")
    print(f"  MACs   {a.macs:,} ({a.macs / 1e9:.4f} G, fvcore)" +
          (f" + {a.uncounted_macs / 1e9:.4f} G attention products fvcore skips" if a.uncounted_macs else ""))
    print(f"  peak activation memory {_mib(a.peak_activation_bytes)}; size fp32 {_mib(a.size_fp32_bytes)}, "
          f"int8 {_mib(a.size_int8_bytes)}")
    print(f"\n  {'unit':8s} {'type':20s} {'place':28s} {'output':>16s} {'params':>10s} {'MMACs':>9s}")
    for b in a.blocks:
        shape = "x".join(map(str, b.out_shape[1:]))
        print(f"  {b.name:8s} {b.type:20s} {b.place:28s} {shape:>16s} {b.params:10,d} {b.macs / 1e6:9.2f}")
    return 0
