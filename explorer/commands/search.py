"""``explorer search SPEC``: constraint-guided regularised evolution from a preset or spec file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from ..design import load_design, retarget
from ..search import Constraints, search


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search for a better design under budgets and best-practice rules")
    p.add_argument("spec", metavar="SPEC", help="the starting design: a preset name or a YAML/JSON spec path")
    p.add_argument("--objective", default="macs", help="macs | params | latency (predicted on --device) (default macs)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--population", type=int, default=12)
    p.add_argument("--sample", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input", type=int, default=None, metavar="SIZE", help="square input size (default: the spec's)")
    p.add_argument("--max-params", type=float, default=None, metavar="M", help="budget in millions of parameters")
    p.add_argument("--max-macs", type=float, default=None, metavar="G", help="budget in GMACs")
    p.add_argument("--max-peak-mib", type=float, default=None, metavar="MIB", help="peak activation memory budget")
    p.add_argument("--max-latency", type=float, default=None, metavar="MS", help="predicted latency budget on --device")
    p.add_argument("--device", default="host", help="device profile for latency (default host)")
    p.add_argument("--antialias", action="store_true", help="require anti-aliased downsampling after the stem")
    p.add_argument("--condensers-early", action="store_true", help="require an attention condenser in the first half")
    p.add_argument("-o", "--output", type=Path, default=None, help="write the best design's YAML here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    spec = load_design(args.spec)
    if args.input:
        spec = retarget(spec, input_size=args.input)
    constraints = Constraints(
        max_params=int(args.max_params * 1e6) if args.max_params else None,
        max_macs=int(args.max_macs * 1e9) if args.max_macs else None,
        max_peak_activation_bytes=int(args.max_peak_mib * 2**20) if args.max_peak_mib else None,
        max_latency_ms=args.max_latency, device=args.device, antialias_downsampling=args.antialias,
        condensers_early=args.condensers_early)
    with tqdm(total=args.steps, desc="searching", unit="step", disable=args.json, leave=False) as bar:
        result = search(spec, constraints, args.objective, args.steps, args.population, args.sample, args.seed,
                        progress=lambda step, total, msg: bar.update(step - bar.n))
    if args.output:
        args.output.write_text(result.best.spec_yaml)
    best = result.best
    summary = {"objective": args.objective, "evaluated": len(result.history), "rejected": result.rejected,
               "best": {"step": best.step, "mutation": best.mutation, "params": best.params, "macs": best.macs,
                        "peak_activation_bytes": best.peak_activation_bytes, "latency_ms": best.latency_ms,
                        "score": best.score}, "output": str(args.output) if args.output else None}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"evaluated {summary['evaluated']} designs ({result.rejected} broke a constraint); "
              f"best (step {best.step}, "
              f"{best.mutation}): {best.params / 1e6:.3f} M params, {best.macs / 1e9:.3f} GMACs"
              + (f", {best.latency_ms:.2f} ms predicted" if best.latency_ms is not None else "")
              + (f"; wrote {args.output}" if args.output else ""))
    return 0
