"""``explorer searches [--json] [--db PATH] [--limit N]``: the stored design searches, newest first.

One line per search: id, start, status, objectives, counts (candidates, those that broke a constraint,
evaluations, the longest training). ``--json`` prints a list of objects with ``search_id, started,
status, objectives, counts`` (and ``finished, elapsed_s, error, base``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..store import Store
from .common import add_db_option, local_time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("searches", help="list stored design searches (resume one with explorer search --resume ID)")
    add_db_option(p)
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N searches (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ValueError(f"--limit {args.limit} must be at least 1")
    if args.db is not None and not Path(args.db).expanduser().exists():
        raise FileNotFoundError(f"no store at {args.db}; run a search first or give another --db")
    with Store(args.db) as store:
        out = [{"search_id": r["id"], "started": r["started_at"], "finished": r["finished_at"], "status": r["status"],
                "objectives": r["objectives"].split(","), "counts": r["counts"], "elapsed_s": r["elapsed_s"],
                "error": r["error"], "base": store.get_design(r["base_design_id"]).name}
               for r in store.list_searches(limit=args.limit)]
    if args.json:
        print(json.dumps(out))
        return 0
    if not out:
        print("no searches stored yet; run `explorer search SPEC --objectives accuracy,latency`")
        return 0
    print(f"{'id':>4s}  {'started':16s}  {'status':11s}  {'objectives':24s} {'base':16s} {'cand.':>6s} {'rej.':>5s} "
          f"{'evals':>6s} {'max steps':>9s}")
    for r in out:
        c = r["counts"]
        print(f"{r['search_id']:4d}  {local_time(r['started']):16s}  {r['status']:11s}  "
              f"{','.join(r['objectives']):24s} "
              f"{r['base'][:16]:16s} {c['candidates']:6d} {c['rejected']:5d} {c['evaluations']:6d} "
              f"{c['max_fidelity_steps']:9d}")
    return 0
