"""Nightly-size spec fuzzing: random specs and mutation chains of every preset, for a few minutes.

The suite's fuzzer (``tests/test_hostile_specs.py``) runs a few dozen fixed examples; this runs
as many as fit in ``--minutes``, drawn from the same generators (``tests/spec_fuzz.py``), larger
designs among them. Every example must end as a valid analysis (``analyze``, and a YAML round
trip) or as our one-line ``SpecError``, within ``--bound`` seconds and a 3 GiB address-space cap;
anything else is a finding, listed with the seed that replays it. The fixed hostile files of issue
10 run first. Writes its section of ``benchmarks/RESULTS.md``; exits 1 if there was any finding.

    python benchmarks/fuzz_specs.py [--minutes 5] [--seed 0] [--bound 10]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the generators the suite's fuzzer uses
from explorer.presets import list_presets

from results import markdown_table, write_section
from spec_fuzz import (
    HOSTILE,
    Outcome,
    check_case,
    check_mutation,
    memory_bound,
    mutation_chain,
    peak_rss_mib,
    random_spec,
)
from spec_fuzz import reason as refusal_kind


def first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:200] if text else ""


def run_example(seed: int, presets: list[str]) -> list[tuple[str, Outcome]]:
    """One example: a random spec (3 in 4) or a 3-step mutation chain of a preset (1 in 4)."""
    rng = random.Random(seed)
    if seed % 4 == 3:
        preset = presets[(seed // 4) % len(presets)]
        return [(f"mutation of {preset}", check_mutation(step)) for step in mutation_chain(rng, preset, steps=3)]
    return [("random spec", check_case(random_spec(rng, most=rng.choice([3, 3, 5]))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bound", type=float, default=10.0, help="seconds one example may take")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the suite runs (conftest.py)
    rss_start = peak_rss_mib()

    hostile_ok = 0
    findings: list[str] = []
    for label, source, words in HOSTILE:
        try:
            with memory_bound():
                outcome = check_case(source)
        except Exception as exc:  # noqa: BLE001 - every other end is a finding
            findings.append(f"hostile '{label}': {type(exc).__name__}: {first_line(exc)}")
            continue
        if outcome.kind == "refused" and words in outcome.message and outcome.seconds <= args.bound:
            hostile_ok += 1
        else:
            findings.append(f"hostile '{label}': {outcome.kind} in {outcome.seconds:.1f} s: {outcome.message[:200]}")

    presets = list_presets()
    kinds: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    times: list[float] = []
    slowest = (0.0, "")
    examples = 0
    deadline = time.monotonic() + args.minutes * 60
    seed = args.seed * 1_000_000
    while time.monotonic() < deadline:
        seed += 1
        examples += 1
        start = time.perf_counter()
        try:
            with memory_bound():
                steps = run_example(seed, presets)
        except Exception as exc:  # noqa: BLE001 - an assertion or any other error is a finding
            kinds["finding"] += 1
            findings.append(f"seed {seed}: {type(exc).__name__}: {first_line(exc)}")
            continue
        seconds = time.perf_counter() - start
        times.append(seconds)
        if seconds > slowest[0]:
            slowest = (seconds, f"seed {seed} ({steps[0][0]}, {', '.join(o.kind for _, o in steps)})")
        for source, outcome in steps:
            sources[source.split(" of ")[0]] += 1
            kinds[outcome.kind] += 1
            if outcome.kind == "refused":
                refusals[refusal_kind(outcome.message)] += 1
            if outcome.seconds > args.bound:
                kinds["over the time bound"] += 1
                findings.append(f"seed {seed}: {source} took {outcome.seconds:.1f} s (bound {args.bound:.0f} s)")

    cases = sum(sources.values())
    q = statistics.quantiles(times, n=20) if len(times) >= 20 else [max(times, default=0.0)] * 19
    rows = [
        ["examples (seeds)", f"{examples} in {args.minutes:g} min, seeds {args.seed * 1_000_000 + 1}…{seed}"],
        ["cases: random specs / mutation steps", f"{sources['random spec']} / {sources['mutation']}"],
        ["valid, analysed and round-tripped", f"{kinds['valid']} ({100 * kinds['valid'] / max(cases, 1):.0f} %)"],
        ["refused with our one-line SpecError", f"{kinds['refused']} ({100 * kinds['refused'] / max(cases, 1):.0f} %)"],
        ["findings (other errors, over the time bound)", str(kinds["finding"] + kinds["over the time bound"])],
        ["hostile files of issue 10 refused as expected", f"{hostile_ok} / {len(HOSTILE)}"],
        ["seconds per example: p50 / p95 / max", f"{q[9]:.2f} / {q[18]:.2f} / {slowest[0]:.2f}"],
        ["slowest example", slowest[1]],
        ["peak RSS (MiB): at start / at end", f"{rss_start:.0f} / {peak_rss_mib():.0f}"],
    ]
    top = [[count, f"`{kind}`"] for kind, count in refusals.most_common(12)]
    body = (
        "Random specs drawn from the block registry's schemas (clean or with odd values, as mappings, YAML or "
        "JSON) and 3-step mutation chains of every preset (`tests/spec_fuzz.py`, the suite's generators), as many "
        f"as fit in {args.minutes:g} minutes. Each must end as a valid analysis (and a YAML round trip) or our "
        f"one-line `SpecError`, within {args.bound:g} s and 3 GiB of address space over the start "
        "(torch on 1 thread); anything else is a finding, listed with the seed that replays it.\n\n"
        + markdown_table(["what", "result"], rows)
        + "\n\nThe most common refusals (places and numbers blanked):\n\n"
        + markdown_table(["count", "refusal"], top)
        + ("\n\nFindings:\n\n" + "\n".join(f"- {f}" for f in findings[:30]) if findings else "\n\nNo findings.")
    )
    write_section("fuzz_specs", "Spec fuzzing (benchmarks/fuzz_specs.py)", body)
    print("\n".join(f"{a}: {b}" for a, b in rows))
    for finding in findings[:30]:
        print("FINDING", finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
