"""Search speed: candidates scored per second with the free signals only (no training).

Runs ``explorer.search.search`` from AttendNeXt with cost objectives, in process, and times the
whole call (proposing children by mutation, validating them, analysing them, checking the
constraints, Pareto selection, the front and its hypervolume after every generation, and the
result's YAML). Settings:

- ``macs,params`` at 224² with a cold analysis cache (every new unit is really counted: the
  cost a fresh search pays), then the same search again with the cache warm (what is left is the
  search's own overhead: mutation, validation, selection, bookkeeping);
- the same at 32² (the proxy task's resolution);
- ``macs,params`` with the store (every evaluation committed, ``synchronous=FULL``);
- ``latency,params`` with latency predicted on the host profile (an ONNX export per child).

Target (issue 11): >= 200 candidates/s on the 2-core CI machine. The load average is printed
with the numbers: other processes on a shared machine slow every row.

    python benchmarks/search_speed.py [--steps 200] [--latency-steps 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explorer.analysis import analyze, clear_cache
from explorer.design import load_preset, retarget
from explorer.search import Constraints, SearchResult, search
from explorer.store import Store

from results import markdown_table, write_section

TARGET = 200.0


def timed(label: str, run: Callable[[], SearchResult]) -> tuple[str, SearchResult, float]:
    t = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - t
    print(f"{label}: {len(result.history) - 1} children in {seconds:.2f} s = "
          f"{(len(result.history) - 1) / seconds:.1f}/s", flush=True)
    return label, result, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="children per cost-only search (default 200)")
    parser.add_argument("--latency-steps", type=int, default=30, help="children with predicted latency (default 30)")
    args = parser.parse_args(argv)
    base224 = load_preset("attendnext")
    base32 = retarget(base224, input_size=32)
    free = Constraints()
    load_before = os.getloadavg()[0]

    runs = []
    clear_cache()
    analyze(base224)  # the start is counted before the clock: a search starts from an analysed design
    runs.append(timed("224², macs,params, cold cache",
                      lambda: search(base224, free, "macs,params", steps=args.steps, seed=0)))
    runs.append(timed("224², macs,params, warm cache (the same search again)",
                      lambda: search(base224, free, "macs,params", steps=args.steps, seed=0)))
    analyze(base32)
    runs.append(timed("32², macs,params, cold cache",
                      lambda: search(base32, free, "macs,params", steps=args.steps, seed=0)))
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.sqlite") as store:
        runs.append(timed("224², macs,params, warm cache, every evaluation stored",
                          lambda: search(base224, free, "macs,params", steps=args.steps, seed=0, store=store)))
    runs.append(timed("224², latency (predicted on host),params",
                      lambda: search(base224, free, "latency,params", steps=args.latency_steps, seed=0)))
    load_after = os.getloadavg()[0]

    rows = []
    for label, result, seconds in runs:
        children = len(result.history) - 1
        evaluating = sum(c.seconds for c in result.history[1:])
        rate = children / seconds
        rows.append([label, children, f"{seconds:.2f}", f"{rate:.1f}", f"{1e3 * seconds / children:.1f}",
                     f"{100 * evaluating / seconds:.0f} %", "yes" if rate >= TARGET else "no"])
    table = markdown_table(["setting", "children", "seconds", "candidates/s", "ms each", "in evaluate_candidate",
                            f">= {TARGET:.0f}/s"], rows)
    body = (
        f"{table}\n\n"
        f"Load average (1 min) {load_before:.1f} before and {load_after:.1f} after: the machine was shared, and "
        "every row is slower for it. *In evaluate_candidate* is the share of the wall time spent evaluating "
        "(analysis, constraint checks, latency); the rest is proposing children (mutation and validation), "
        "selection, the front and hypervolume after every generation, and writing the result's YAML. A cold "
        "search spends most of its time counting the units the mutations create (each new unit is traced once "
        "by fvcore on real tensors at its input size, then cached); the warm row is the search's own ceiling. "
        "Predicted latency exports every child to ONNX, so it is a slower free signal."
    )
    write_section("search_speed", "Search speed: candidates scored per second, free signals only", body)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
