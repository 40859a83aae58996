"""Instant analysis: recount after a one-block edit vs a fresh whole-model fvcore count.

For the AttendNeXt preset at 224x224 this script makes distinct one-block edits (each edited
block is a cache miss, so it is really counted), times ``analyze(edited_spec)`` for each, and
times a fresh whole-model count of the same edited design (build, re-parameterise,
``fvcore.nn.FlopCountAnalysis(...).total()``) interleaved with it, checking that both give the
same totals. Targets (issue 2): p50 <= 20 ms and >= 5x faster than the fresh count.

    python benchmarks/analysis_speed.py [--edits 24]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explorer.analysis import analyze, clear_cache, fvcore_counter
from explorer.build import build_model, reparameterize
from explorer.design import load_preset
from explorer.mutate import applicable_mutations, apply_mutation
from explorer.spec import ArchitectureSpec, SpecError

from results import markdown_table, write_section


def one_block_edits(spec: ArchitectureSpec, count: int) -> list[tuple[str, ArchitectureSpec]]:
    """Distinct single-block edits (kernel and expansion changes), valid ones only."""
    edits = []
    for name, stage, block in applicable_mutations(spec):
        if name not in ("kernel_up", "kernel_down", "expand_up", "expand_down"):
            continue
        try:
            edits.append((f"{name} s{stage}.b{block}", apply_mutation(spec, name, stage, block)))
        except SpecError:
            continue
        if len(edits) == count:
            break
    return edits


def fresh_fvcore_count(spec: ArchitectureSpec) -> tuple[int, float]:
    start = time.perf_counter()
    model = reparameterize(build_model(spec))
    total = fvcore_counter(model, torch.zeros(1, spec.input.channels, *spec.input.hw)).total()
    return int(total), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=24)
    args = parser.parse_args()
    torch.set_num_threads(1)

    base = load_preset("attendnext")
    clear_cache()
    start = time.perf_counter()
    analyze(base)
    cold_ms = (time.perf_counter() - start) * 1e3
    edits = one_block_edits(base, args.edits)

    incremental, fresh = [], []
    for label, spec in edits:
        start = time.perf_counter()
        a = analyze(spec)
        incremental.append((time.perf_counter() - start) * 1e3)
        total, seconds = fresh_fvcore_count(spec)
        fresh.append(seconds * 1e3)
        if total != a.macs + a.uncounted_macs:
            raise SystemExit(f"{label}: incremental total {a.macs} != fresh fvcore total {total}")
        analyze(base)  # back to the base design, as an editor's undo would

    p50_inc, p50_fresh = statistics.median(incremental), statistics.median(fresh)
    p90_inc = statistics.quantiles(incremental, n=10)[-1]
    speedup = p50_fresh / p50_inc
    rows = [
        ["recount after a one-block edit (`analyze`, cached units)", f"{p50_inc:.1f}", f"{p90_inc:.1f}", "≤ 20 ms",
         "yes" if p50_inc <= 20 else "NO"],
        ["fresh whole-model fvcore count (build + fold + count)", f"{p50_fresh:.1f}",
         f"{statistics.quantiles(fresh, n=10)[-1]:.1f}", "", ""],
        ["speed-up (p50 / p50)", f"{speedup:.0f}x", "", "≥ 5x", "yes" if speedup >= 5 else "NO"],
        ["cold `analyze` of the whole design (empty cache)", f"{cold_ms:.0f}", "", "", ""],
    ]
    table = markdown_table(["measurement (AttendNeXt, 224x224, 1 thread)", "p50 ms", "p90 ms", "target", "met"], rows)
    body = (
        f"{len(edits)} distinct one-block edits (kernel and expansion changes), each timed as `analyze(edited)` "
        "and, interleaved, as a fresh whole-model fvcore count; totals identical for every edit.\n\n" + table +
        "\n\nReproduce: `python benchmarks/analysis_speed.py`."
    )
    print(table)
    write_section("analysis_speed", "Instant analysis (benchmarks/analysis_speed.py)", body)


if __name__ == "__main__":
    main()
