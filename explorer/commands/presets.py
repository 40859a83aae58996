"""``explorer presets``: list presets with their parameters and MACs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..analysis import analyze
from ..design import load_preset
from ..presets import list_presets


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list presets with params and MACs")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for name in list_presets():
        spec = load_preset(name)
        a = analyze(spec)
        rows.append({"name": name, "input": list(a.input_shape[1:]), "params": a.params, "macs": a.macs,
                     "description": spec.description})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'preset':20s} {'input':>12s} {'params (M)':>11s} {'GMACs':>8s}  description")
    for r in rows:
        size = "x".join(map(str, r["input"]))
        print(f"{r['name']:20s} {size:>12s} {r['params'] / 1e6:11.3f} {r['macs'] / 1e9:8.3f}  {r['description']}")
    return 0
