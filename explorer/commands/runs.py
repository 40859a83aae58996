"""``explorer runs [RUN_ID] [--json] [--db PATH] [--limit N]``: the stored training runs.

Without RUN_ID: one line per run, newest first. With RUN_ID: that run, its config and its curve.
"""

from __future__ import annotations

import argparse
import json

from ..store import Store
from .common import add_db_option, local_time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list stored training runs (or show one with its curve)")
    p.add_argument("run_id", nargs="?", type=int, metavar="RUN_ID", help="show this run with its curve")
    add_db_option(p)
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N runs (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _fmt(x: object, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "-"


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ValueError(f"--limit {args.limit} must be at least 1")
    if args.db is not None:
        from pathlib import Path

        if not Path(args.db).expanduser().exists():
            raise FileNotFoundError(f"no store at {args.db}; train a design first or give another --db")
    with Store(args.db) as store:
        if args.run_id is not None:
            r = store.get_run(args.run_id)
            if args.json:
                print(json.dumps(r.to_dict(with_curve=True)))
                return 0
            m = r.metrics
            print(f"run {r.id}: {r.design_name} (design {r.design_id}) on {r.dataset}, {r.status}, "
                  f"started {local_time(r.started_at)}")
            if r.error:
                print(f"  {r.error}")
            print(f"  steps {m.get('steps', '-')}, val accuracy {_fmt(m.get('val_accuracy'), '.4f')}, "
                  f"final train loss {_fmt(m.get('final_train_loss'), '.4f')}, weights {r.weights_path or '-'}")
            print(f"\n  {'step':>7s} {'loss':>8s} {'val acc':>8s} {'lr':>10s} {'seconds':>8s}")
            for p in r.curve:
                print(f"  {p.step:7d} {_fmt(p.train_loss, '8.4f'):>8s} {_fmt(p.val_accuracy, '8.4f'):>8s} "
                      f"{_fmt(p.lr, '10.3g'):>10s} {p.seconds:8.1f}")
            return 0
        runs = store.list_runs(limit=args.limit)
        if args.json:
            print(json.dumps([r.to_dict() for r in runs]))
            return 0
        if not runs:
            print(f"no runs in {store.path} yet; `explorer train attendnext --dataset digits` makes one")
            return 0
        print(f"{'id':>4s} {'status':11s} {'design':22s} {'dataset':10s} {'steps':>6s} {'val acc':>8s} "
              f"{'loss':>7s} {'seconds':>8s}  started")
        for r in runs:
            m = r.metrics
            print(f"{r.id:4d} {r.status:11s} {r.design_name[:22]:22s} {r.dataset[:10]:10s} "
                  f"{_fmt(m.get('steps'), 'd'):>6s} "
                  f"{_fmt(m.get('val_accuracy'), '.4f'):>8s} {_fmt(m.get('final_train_loss'), '.3f'):>7s} "
                  f"{_fmt(m.get('seconds'), '.1f'):>8s}  {local_time(r.started_at)}")
    return 0
