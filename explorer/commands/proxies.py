"""``explorer proxies SPEC [--dataset digits] [--input 32] [--batch 64] [--seed 0] [--json] [--db PATH]``.

synflow, NASWOT, grad-norm and snip of the freshly initialised design (see ``explorer/proxies.py``),
each with its time; the scores are stored with the design.
"""

from __future__ import annotations

import argparse
import json

from ..store import Store
from .common import add_db_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("proxies", help="zero-cost proxies (synflow, NASWOT, grad-norm, snip) of a design")
    p.add_argument("spec", metavar="SPEC", help="a preset name or a YAML/JSON spec path")
    p.add_argument("--dataset", default="digits", metavar="NAME|PATH",
                   help="where the batch comes from (default digits)")
    p.add_argument("--input", type=int, default=32, metavar="SIZE", help="square input size (default 32)")
    p.add_argument("--batch", type=int, default=64, metavar="B", help="batch size (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the batch")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..design import load_design
    from ..proxies import PROXIES, compute_proxies

    if args.seed < 0:
        raise ValueError(f"seed {args.seed} must be 0 or more")
    spec = load_design(args.spec)
    scores = compute_proxies(spec, input_size=args.input, batch_size=args.batch, seed=args.seed, dataset=args.dataset)
    with Store(args.db) as store:
        design_id = store.save_design(spec.to_yaml(), spec.name)
        store.save_proxies(design_id, scores["input_size"], args.dataset, args.seed,
                           {k: scores[k] for k in (*PROXIES, "seconds", "batch_size", "params")})
    if args.json:
        print(json.dumps(scores))
        return 0
    print(f"{spec.name} at {scores['input_size']}×{scores['input_size']}, batch {scores['batch_size']} of "
          f"{args.dataset}, seed {args.seed} ({scores['params']:,} params)")
    for name in PROXIES:
        print(f"  {name:10s} {scores[name]:14.6g}   {scores['seconds'][name]:.2f} s")
    return 0
