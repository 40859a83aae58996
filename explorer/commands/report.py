"""``explorer report SPEC [-o design.html] [--db PATH] [--input SIZE] [--no-presets] [--json]``: a design report.

One self-contained HTML file (``explorer.report``): the design's YAML, totals, per-unit table and
charts, and, with ``--db`` (or when ``$EXPLORER_DB`` / ``runs/explorer.sqlite`` exists), the latency
measurements and training runs the store holds for it. It opens offline in any browser.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ..design import load_design, retarget
from ..report import write_report
from ..store import Store, default_db_path
from .common import add_db_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of a design (charts, table, YAML, runs)")
    p.add_argument("spec", metavar="SPEC", help="a preset name or a YAML/JSON spec path")
    p.add_argument("-o", "--output", default=None, metavar="FILE.html",
                   help="where to write it (default: <design name>-report.html here)")
    add_db_option(p, help="the store to read latency and runs from (default $EXPLORER_DB or "
                          "runs/explorer.sqlite, when it exists)")
    p.add_argument("--no-store", action="store_true", help="leave the store's latency and runs out")
    p.add_argument("--input", type=int, default=None, metavar="SIZE", help="square input size (default: the spec's)")
    p.add_argument("--no-presets", action="store_true", help="leave out the chart among the presets (faster)")
    p.add_argument("--json", action="store_true", help="print where the report went as one JSON object")
    p.set_defaults(func=run)


def _default_name(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "design"
    return f"{safe}-report.html"


def run(args: argparse.Namespace) -> int:
    spec = load_design(args.spec)
    if args.input is not None:
        spec = retarget(spec, input_size=args.input)
    out = Path(args.output) if args.output else Path(_default_name(spec.name))
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"-o {out}: a report is an HTML file; give a name ending in .html")
    if args.no_store and args.db:
        raise ValueError("--db and --no-store contradict each other; give one")
    store = None
    if not args.no_store:
        db = Path(args.db).expanduser() if args.db else default_db_path()
        if args.db and not db.exists():
            raise FileNotFoundError(f"no store at {args.db}; give an existing --db, or --no-store")
        if db.exists():
            store = Store(db, mark_interrupted=False)
    try:
        path = write_report(spec, out, store, with_presets=not args.no_presets)
    finally:
        if store is not None:
            store.close()
    if args.json:
        print(json.dumps({"design": spec.name, "path": str(path), "bytes": path.stat().st_size,
                          "store": str(store.path) if store is not None else None}))
    else:
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)" + (f"; store {store.path}" if store else ""))
    return 0
