"""Do zero-cost proxies rank designs the way a short training run does?

For every preset and a few random mutations of AttendNeXt (all at 32×32, 10 classes) this computes
synflow, NASWOT, grad-norm and snip on one seeded batch, then trains the design briefly with the
explorer's recipe (``explorer.train``) and takes its validation accuracy. Kendall's τ_b between each
score and the accuracy says how well the score ranks the designs (1: the same order, 0: unrelated,
−1: reversed); params and MACs are ranked the same way as a baseline a proxy should beat.

    python benchmarks/proxies.py                       # 6 presets + 6 mutations, shapes, 100 steps
    python benchmarks/proxies.py --dataset digits --steps 60 --mutations 4 --no-write

The table goes to ``benchmarks/RESULTS.md`` (section ``proxies``), whatever the taus turn out to be.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import markdown_table, write_section
from explorer.analysis import analyze
from explorer.data import load_dataset
from explorer.design import load_preset, retarget
from explorer.mutate import random_architectures
from explorer.presets import list_presets
from explorer.proxies import PROXIES, compute_proxies, kendall_tau_b
from explorer.train import make_config, train


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="shapes", choices=["shapes", "digits"])
    ap.add_argument("--steps", type=int, default=100, help="training steps per design (batch 64)")
    ap.add_argument("--mutations", type=int, default=6, help="random mutations of attendnext besides the presets")
    ap.add_argument("--input", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args(argv)

    start = time.perf_counter()
    split = load_dataset(args.dataset, args.input, 0)
    designs = [load_preset(n) for n in list_presets()]
    designs += random_architectures(args.mutations, seed=args.seed, input_size=args.input, bases=["attendnext"],
                                    steps=2)
    compute_proxies(designs[0], args.input, 64, args.seed, args.dataset, data=split)  # warm-up, not timed
    rows = []
    for spec in designs:
        run_spec = retarget(spec, input_size=args.input, num_classes=split.num_classes)
        a = analyze(run_spec)
        scores = compute_proxies(spec, args.input, 64, args.seed, args.dataset, data=split)
        result = train(spec, make_config(dataset=args.dataset, steps=args.steps, input_size=args.input,
                                         seed=args.seed, eval_every=0, log_every=20), data=split)
        rows.append({"name": spec.name, "params": a.params, "macs": a.macs, "val_accuracy": result.val_accuracy,
                     "train_seconds": result.train_seconds, **{k: scores[k] for k in PROXIES},
                     "proxy_seconds": scores["seconds"]})
        print(json.dumps(rows[-1]), flush=True)
    # how much does the accuracy of one such run move with the seed? (the first design, one more seed)
    again = train(designs[0], make_config(dataset=args.dataset, steps=args.steps, input_size=args.input,
                                          seed=args.seed + 1, eval_every=0, log_every=20), data=split)
    seed_delta = abs(again.val_accuracy - rows[0]["val_accuracy"])
    total = time.perf_counter() - start

    acc = [r["val_accuracy"] for r in rows]
    n_presets = len(rows) - args.mutations
    taus = {k: kendall_tau_b([r[k] for r in rows], acc) for k in (*PROXIES, "params", "macs")}
    taus_presets = {k: kendall_tau_b([r[k] for r in rows[:n_presets]], acc[:n_presets]) for k in taus}
    proxy_time = {k: (statistics.median(r["proxy_seconds"][k] for r in rows), max(r["proxy_seconds"][k] for r in rows))
                  for k in PROXIES}
    print(json.dumps({"kendall_tau_b": taus, "kendall_tau_b_presets": taus_presets, "proxy_seconds": proxy_time,
                      "seed_delta": seed_delta, "total_seconds": round(total, 1)}))

    per_design = markdown_table(
        ["design", "params (M)", "MMACs", "val acc (%)", "synflow", "NASWOT", "grad-norm", "snip"],
        [[r["name"], f"{r['params'] / 1e6:.2f}", f"{r['macs'] / 1e6:.1f}", f"{100 * r['val_accuracy']:.1f}",
          f"{r['synflow']:.3g}", f"{r['naswot']:.1f}", f"{r['grad_norm']:.3g}", f"{r['snip']:.3g}"] for r in rows])
    tau_table = markdown_table(
        ["score", f"Kendall τ_b, all {len(rows)} designs", f"τ_b, the {n_presets} presets only",
         "seconds per design (median / max)"],
        [[k, f"{taus[k]:+.3f}", f"{taus_presets[k]:+.3f}",
          f"{proxy_time[k][0]:.2f} / {proxy_time[k][1]:.2f}" if k in proxy_time else "(counted, ms)"] for k in taus])
    body = (
        f"`python benchmarks/proxies.py` — {len(rows)} designs ({len(rows) - args.mutations} presets, "
        f"{args.mutations} random 2-step mutations of attendnext, `random_architectures(seed={args.seed})`), all at "
        f"{args.input}×{args.input} with 10 classes. "
        f"Each is scored by the four proxies on one batch of 64 `{args.dataset}` training images (seed {args.seed}), "
        f"then trained for {args.steps} steps of batch 64 (`explorer.train` recipe, seed {args.seed}) and evaluated on "
        f"the {len(split.val_y)} validation images. Whole benchmark: {total / 60:.1f} min.\n\n"
        f"{tau_table}\n\n{per_design}\n\n"
        f"With {len(rows)} designs one τ_b has a standard error of about "
        f"±{(2 * (2 * len(rows) + 5) / (9 * len(rows) * (len(rows) - 1))) ** 0.5:.2f} under no correlation, and the "
        f"accuracy of a run this short is itself noisy: {designs[0].name} trained with seed {args.seed + 1} instead of "
        f"{args.seed} moved by {100 * seed_delta:.1f} points. Read the signs and rough sizes, not the decimals.\n"
    )
    if not args.no_write:
        write_section("proxies", "Zero-cost proxies vs short-training accuracy", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
