"""Which cheap accuracy signal can a search trust? Each one's Kendall τ_b against a long-training reference.

For at least 16 designs (the presets, random mutations of AttendNeXt and random architectures grown
from every preset, spanning a wide latency range) this measures:

- the **reference**: validation accuracy after ``--long-steps`` steps, the mean of two seeds; the
  τ_b between the two seeds is the noise ceiling (a signal cannot be expected to agree with the
  reference much better than the reference agrees with itself);
- the **free signals**: params and MACs of the training copy, predicted host latency of the design
  at its own input (``explorer.latency.predictor`` on the ``host`` profile), and the four zero-cost
  proxies (``explorer.proxies``) on one seeded batch;
- **short training** (a third seed, independent of the reference's) at ``--fidelities`` steps on the
  reference's input, and at ``--large-fidelities`` steps on a larger input (64×64 by default: at
  32×32 most presets end in 1×1 feature maps);
- a **saturation check** on a second dataset (``--check-dataset``): a task where every design reaches
  ~100 % cannot rank them.

Kendall's τ_b (tie-corrected, ``explorer.proxies.kendall_tau_b``) of each signal against the reference;
with n designs and no correlation its standard error is √(2(2n+5) / (9n(n−1))). Every training run uses
the explorer's recipe (``explorer.train``, batch 64) with one torch thread.

    python benchmarks/signal_quality.py --quick            # smoke run, a few minutes, RESULTS.md untouched
    python benchmarks/signal_quality.py                    # the full table (45–60 min on 2 shared cores)
    python benchmarks/signal_quality.py --report runs/signal_quality.json   # re-render a saved run

Rows are saved as they are measured (``--save``), so a finished run can be re-rendered without training.
The table goes to ``benchmarks/RESULTS.md`` (section ``signal_quality``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.results import markdown_table, write_section
from explorer.analysis import analyze
from explorer.data import BUILTIN_DATASETS, DataSplit, load_dataset
from explorer.design import load_design, retarget
from explorer.latency.measure import measure_local
from explorer.latency.predictor import predict
from explorer.latency.profiles import load_profile
from explorer.mutate import random_architectures
from explorer.presets import list_presets
from explorer.proxies import PROXIES, compute_proxies, kendall_tau_b
from explorer.spec import ArchitectureSpec, SpecError
from explorer.train import make_config, train

FREE = ("params", "macs", "latency_ms", "measured_ms")


def tau_se(n: int) -> float:
    """Standard error of Kendall's τ under no correlation: √(2(2n+5) / (9n(n−1)))."""
    return math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1))) if n > 1 else float("nan")


def run_key(kind: str, dataset: str, size: int, steps: int, seed: int) -> str:
    """The name of one training signal, e.g. ``short:shapes:32:16:s2``."""
    return f"{kind}:{dataset}:{size}:{steps}:s{seed}"


def parse_key(key: str) -> tuple[str, int, int, int]:
    """``short:shapes:32:16:s2`` -> (dataset, input size, steps, seed)."""
    _kind, dataset, size, steps, seed = key.split(":")
    return dataset, int(size), int(steps), int(seed[1:])


def make_designs(n_mutations: int, n_random: int, seed: int, sizes: list[int]) -> list[tuple[str, ArchitectureSpec]]:
    """(origin, spec) for every preset, ``n_mutations`` 2-step mutations of attendnext and ``n_random``
    3-step random architectures from all presets; designs that do not fit every size in ``sizes`` are dropped."""
    out: list[tuple[str, ArchitectureSpec]] = [("preset", load_design(n)) for n in list_presets()]
    out += [("mutation", s) for s in random_architectures(n_mutations, seed=seed, bases=["attendnext"], steps=2)]
    out += [("random", s.model_copy(update={"name": f"rand-{s.name}"}))
            for s in random_architectures(n_random, seed=seed + 1, steps=3)]
    kept = []
    for origin, spec in out:
        try:
            for size in sizes:
                retarget(spec, input_size=size, num_classes=10)
        except SpecError as exc:
            print(f"skipped {spec.name}: {exc}", file=sys.stderr)
            continue
        kept.append((origin, spec))
    return kept


def measure_design(origin: str, spec: ArchitectureSpec, plan: list[tuple[str, str, int, int, int]],
                   splits: dict[tuple[str, int], DataSplit], args: argparse.Namespace,
                   profile: Any) -> dict[str, Any]:
    """Every signal of one design: free signals, proxies, then every training run of ``plan``."""
    row: dict[str, Any] = {"name": spec.name, "origin": origin, "seconds": {}, "runs": {}}
    t = time.perf_counter()
    a = analyze(retarget(spec, input_size=args.input, num_classes=10))
    row["params"], row["macs"] = a.params, a.macs
    row["seconds"]["params"] = row["seconds"]["macs"] = time.perf_counter() - t
    t = time.perf_counter()
    row["latency_ms"] = predict(spec, profile)
    row["seconds"]["latency_ms"] = time.perf_counter() - t
    t = time.perf_counter()
    row["measured_ms"] = measure_local(spec, runs=20, warmup=5, threads=1)["median_ms"]
    row["seconds"]["measured_ms"] = time.perf_counter() - t
    scores = compute_proxies(spec, args.input, 64, args.seed + 2, args.dataset, data=splits[(args.dataset, args.input)])
    for k in PROXIES:
        row[k] = scores[k]
        row["seconds"][k] = scores["seconds"][k]
    for key, dataset, size, steps, seed in plan:
        cfg = make_config(dataset=dataset, steps=steps, input_size=size, seed=seed, eval_every=0,
                          log_every=min(10, steps), bn_images=args.bn_images, device="cpu")
        result = train(spec, cfg, data=splits[(dataset, size)])
        row["runs"][key] = {"acc": result.val_accuracy, "seconds": result.seconds}
    return row


def _fmt_tau(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.2f}"


def summarize(rows: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """τ_b of every signal against the reference, its cost, and the spread of the reference (pure)."""
    ref_keys = meta["reference"]
    ref = [statistics.fmean(r["runs"][k]["acc"] for k in ref_keys) for r in rows]
    n = len(rows)
    signals: list[dict[str, Any]] = []

    def add(name: str, kind: str, values: list[float], seconds: list[float], note: str = "") -> None:
        signals.append({"signal": name, "kind": kind, "tau": kendall_tau_b(values, ref),
                        "median_s": statistics.median(seconds), "total_s": sum(seconds), "note": note})

    for k in FREE:
        add(k, "free", [r[k] for r in rows], [r["seconds"][k] for r in rows])
    for k in PROXIES:
        add(k, "proxy", [r[k] for r in rows], [r["seconds"][k] for r in rows])
    for key in meta["short"]:
        _kind, dataset, size, steps, _seed = key.split(":")
        add(f"train {dataset} {size}×{size}, {steps} steps", "train",
            [r["runs"][key]["acc"] for r in rows], [r["runs"][key]["seconds"] for r in rows],
            note=f"{int(meta['long_steps']) // int(steps)}× shorter than the reference")
    a, b = ([r["runs"][k]["acc"] for r in rows] for k in ref_keys)
    ceiling = kendall_tau_b(a, b)
    seed_gap = statistics.fmean(abs(x - y) for x, y in zip(a, b, strict=True))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    within = sum(abs(ref[i] - ref[j]) < seed_gap for i, j in pairs)
    out = {"n": n, "se": tau_se(n), "signals": signals, "ceiling": ceiling, "reference": ref,
           "seed_gap": seed_gap, "pairs": len(pairs), "pairs_within_noise": within,
           "ref_seconds": [sum(r["runs"][k]["seconds"] for k in ref_keys) for r in rows]}
    if meta.get("check"):
        key = meta["check"]
        have = [r for r in rows if key in r["runs"]]
        acc = [r["runs"][key]["acc"] for r in have]
        ref_sub = [ref[rows.index(r)] for r in have]
        p = [(i, j) for i in range(len(acc)) for j in range(i + 1, len(acc))]
        out["check"] = {"key": key, "n": len(acc), "min": min(acc), "max": max(acc), "median": statistics.median(acc),
                        "at_least_95": sum(x >= 0.95 for x in acc),
                        "pairs": len(p), "pairs_within_1pt": sum(abs(acc[i] - acc[j]) < 0.01 for i, j in p),
                        "tau_vs_reference": kendall_tau_b(acc, ref_sub) if len(acc) > 2 else float("nan"),
                        "ref_min": min(ref_sub), "ref_max": max(ref_sub),
                        "ref_pairs_within_1pt": sum(abs(ref_sub[i] - ref_sub[j]) < 0.01 for i, j in p)}
        top = sorted(range(len(acc)), key=lambda i: -acc[i])[:math.ceil(len(acc) / 2)]  # the better half on the check
        out["check"]["top_spread"] = max(acc[i] for i in top) - min(acc[i] for i in top)
        out["check"]["ref_top_spread"] = max(ref_sub[i] for i in top) - min(ref_sub[i] for i in top)
    return out


def choose(summary: dict[str, Any]) -> dict[str, Any]:
    """The default accuracy signal: among the proxies and the short runs (params, MACs and latency are
    costs the search already minimises, shown as baselines), the cheapest whose τ_b is within half a
    standard error of the best one's."""
    usable = [s for s in summary["signals"] if s["kind"] != "free" and not math.isnan(s["tau"])]
    best = max(usable, key=lambda s: s["tau"])
    near = [s for s in usable if s["tau"] >= best["tau"] - 0.5 * summary["se"]]
    return {"best": best, "chosen": min(near, key=lambda s: s["median_s"])}


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The markdown body of the RESULTS.md section, from measured rows only."""
    s = summarize(rows, meta)
    pick = choose(s)
    n, se = s["n"], s["se"]
    lat = [r["latency_ms"] for r in rows]
    meas = [r["measured_ms"] for r in rows]
    by_origin = {o: sum(r["origin"] == o for r in rows) for o in ("preset", "mutation", "random")}
    ref_s = statistics.median(s["ref_seconds"])
    tau_rows = [[sig["signal"], _fmt_tau(sig["tau"]),
                 f"{sig['median_s']:.2f}" if sig["median_s"] >= 0.01 else f"{1e3 * sig['median_s']:.1f} ms",
                 f"{sig['total_s'] / 60:.1f}", sig["note"]] for sig in s["signals"]]
    tau_rows.append([f"reference seed {meta['seeds'][0]} vs seed {meta['seeds'][1]} (noise ceiling)",
                     _fmt_tau(s["ceiling"]), f"{ref_s / 2:.1f}", f"{sum(s['ref_seconds']) / 120:.1f}",
                     f"{meta['long_steps']} steps each"])
    tau_table = markdown_table(["signal", f"Kendall τ_b vs reference ({n} designs)", "seconds per design (median)",
                                "minutes, all designs", "note"], tau_rows)
    short_keys = meta["short"]
    per_design = markdown_table(
        ["design", "origin", "params (M)", "MMACs", "host ms (pred. / meas.)", "ref. acc (%)", "seed gap",
         *[f"{k.split(':')[2]}px {k.split(':')[3]} st." for k in short_keys], "synflow", "NASWOT"],
        [[r["name"], r["origin"], f"{r['params'] / 1e6:.2f}", f"{r['macs'] / 1e6:.1f}",
          f"{r['latency_ms']:.1f} / {r['measured_ms']:.1f}",
          f"{100 * ref:.1f}",
          f"{100 * abs(r['runs'][meta['reference'][0]]['acc'] - r['runs'][meta['reference'][1]]['acc']):.1f}",
          *[f"{100 * r['runs'][k]['acc']:.1f}" for k in short_keys], f"{r['synflow']:.3g}", f"{r['naswot']:.1f}"]
         for r, ref in sorted(zip(rows, s["reference"], strict=True), key=lambda p: -p[1])])
    ref_lo, ref_hi = min(s["reference"]), max(s["reference"])
    text = [
        f"`{meta['command']}` — {n} designs ({by_origin['preset']} presets, {by_origin['mutation']} random 2-step "
        f"mutations of attendnext, {by_origin['random']} random 3-step architectures from all presets; "
        f"`random_architectures(seed={meta['seed']})` / `seed={meta['seed'] + 1}`), predicted host latency at each "
        f"design's own input {min(lat):.1f}–{max(lat):.1f} ms ({max(lat) / min(lat):.1f}×, the `host` profile, "
        f"{meta.get('profile_note', '')}), measured here (ONNX Runtime, 1 thread, batch 1, median of 20, "
        f"between training runs on a machine shared with other work, so noisy) "
        f"{min(meas):.1f}–{max(meas):.1f} ms (**{max(meas) / min(meas):.1f}× range**). Task: `{meta['dataset']}`, "
        f"{meta['n_train']} train / {meta['n_val']} val images, "
        f"10 classes, batch 64, one torch thread, `explorer.train` recipe. **Reference** = mean validation accuracy "
        f"of seeds {meta['seeds'][0]} and {meta['seeds'][1]} after {meta['long_steps']} steps at "
        f"{meta['input']}×{meta['input']}; short runs and proxies use seed {meta['seed'] + 2}, so they share no "
        f"initialisation or batch order with it. Params and MACs are of the 10-class training copy at "
        f"{meta['input']}×{meta['input']}. Whole run: {meta['wall_s'] / 60:.1f} min wall. Other processes shared the "
        "two cores during the run, so every time here (seconds per design, measured latency) is noisy: compare "
        "them within a table, not across runs.",
        "",
        tau_table,
        "",
        f"With {n} designs one τ_b has a standard error of about ±{se:.2f} under no correlation (a difference "
        f"between two τ_b below ~{se:.2f} is not evidence). The reference spreads the designs over "
        f"{100 * ref_lo:.1f}–{100 * ref_hi:.1f} %; its two seeds differ by {100 * s['seed_gap']:.1f} points on "
        f"average, and {s['pairs_within_noise']} of {s['pairs']} design pairs are closer than that.",
    ]
    if "check" in s:
        c = s["check"]
        ds = c["key"].split(":")[1]
        saturated = c["at_least_95"] >= c["n"] / 2 or c["top_spread"] < 0.5 * c["ref_top_spread"]
        text += ["", (
            f"**Which task spreads the designs?** `{ds}` after {c['key'].split(':')[3]} steps (seed "
            f"{c['key'].split(':')[4][1:]}, {c['n']} designs): {100 * c['min']:.1f}–{100 * c['max']:.1f} % "
            f"(median {100 * c['median']:.1f} %), {c['at_least_95']} of {c['n']} at ≥ 95 %, {c['pairs_within_1pt']} of "
            f"{c['pairs']} pairs within 1 point, and its better half ({math.ceil(c['n'] / 2)} designs) spans "
            f"{100 * c['top_spread']:.1f} points; the `{meta['dataset']}` reference on the same designs: "
            f"{100 * c['ref_min']:.1f}–{100 * c['ref_max']:.1f} %, {c['ref_pairs_within_1pt']} pairs within 1 point, "
            f"the same better half spanning {100 * c['ref_top_spread']:.1f} points; "
            f"τ_b between the two rankings {_fmt_tau(c['tau_vs_reference'])}. "
            + (f"`{ds}` saturates (designs tie near the top), so it cannot rank them; `{meta['dataset']}` is the "
               "proxy task." if saturated else
               f"`{ds}` does not saturate here; it spreads the designs about as well as `{meta['dataset']}`.")
        )]
    large = [sig for sig in s["signals"] if sig["kind"] == "train" and f" {meta['large_input']}×" in sig["signal"]]
    small = [sig for sig in s["signals"] if sig["kind"] == "train" and f" {meta['input']}×" in sig["signal"]]
    if large and small:
        lines = []
        for lg in large:
            # the small-input run of the closest cost at or below the large one's
            cheaper = [sm for sm in small if sm["median_s"] <= lg["median_s"] * 1.1] or small
            sm = max(cheaper, key=lambda x: x["median_s"])
            lines.append(f"{lg['signal']}: τ_b {_fmt_tau(lg['tau'])} for {lg['median_s']:.1f} s per design, against "
                         f"{sm['signal']}: τ_b {_fmt_tau(sm['tau'])} for {sm['median_s']:.1f} s")
        better = any(lg["tau"] > max(sm["tau"] for sm in small if sm["median_s"] <= lg["median_s"] * 1.1) + 0.5 * se
                     for lg in large if any(sm["median_s"] <= lg["median_s"] * 1.1 for sm in small))
        text += ["", f"**{meta['large_input']}×{meta['large_input']} or {meta['input']}×{meta['input']}?** "
                 + "; ".join(lines) + ". "
                 + ("The larger input ranks better for its cost (by more than half a standard error)."
                    if better else
                    f"The larger input does not rank better for its cost here (no gain beyond half a standard error "
                    f"over a {meta['input']}×{meta['input']} run that costs as much or less). Caveat: the reference "
                    f"is trained at {meta['input']}×{meta['input']} too, which favours the small input.")]
    ch, best = pick["chosen"], pick["best"]
    text += ["", (
        f"**Default accuracy signal, by the rule \"among the proxies and short runs, the cheapest whose τ_b is "
        f"within half a standard error "
        f"(±{0.5 * se:.2f}) of the best\":** {ch['signal']} (τ_b {_fmt_tau(ch['tau'])}, {ch['median_s']:.2f} s per "
        f"design); "
        + ("it is also the best τ_b. " if best is ch else
           f"the best was {best['signal']} (τ_b {_fmt_tau(best['tau'])}, {best['median_s']:.2f} s). ")
        + f"The noise ceiling is {_fmt_tau(s['ceiling'])}."
    ), "", per_design]
    return "\n".join(text) + "\n"


def parse_steps(text: str, what: str) -> list[int]:
    try:
        steps = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"signal_quality: {what} {text!r} is not a comma-separated list of step counts, "
                         "e.g. 8,16") from None
    if not steps or min(steps) < 1:
        raise SystemExit(f"signal_quality: {what} needs at least one step count ≥ 1, e.g. 8,16")
    return steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="shapes", choices=BUILTIN_DATASETS, help="the task all signals are judged on")
    ap.add_argument("--check-dataset", default="digits", choices=[*BUILTIN_DATASETS, "none"],
                    help="a second task, trained once per design, to see whether it saturates")
    ap.add_argument("--check-steps", type=int, default=None,
                    help="steps of the saturation check (default: --long-steps)")
    ap.add_argument("--check-designs", type=int, default=6,
                    help="how many designs (the first: presets, then mutations) get the check; 0: all")
    ap.add_argument("--long-steps", type=int, default=128, help="reference steps (two seeds)")
    ap.add_argument("--fidelities", default="8,16", help="short-run steps at --input")
    ap.add_argument("--large-input", type=int, default=64)
    ap.add_argument("--large-fidelities", default="8,16", help="short-run steps at --large-input ('' for none)")
    ap.add_argument("--input", type=int, default=32)
    ap.add_argument("--mutations", type=int, default=5, help="random 2-step mutations of attendnext")
    ap.add_argument("--random", type=int, default=5, help="random 3-step architectures from all presets")
    ap.add_argument("--n-train", type=int, default=5000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--bn-images", type=int, default=512, help="training images that re-estimate BatchNorm statistics")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="smoke run: 8 designs, tiny steps and data, no write")
    ap.add_argument("--save", default="runs/signal_quality.json", help="where the measured rows go (JSON)")
    ap.add_argument("--report", default=None, help="re-render a saved JSON run instead of measuring")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args(argv)

    if args.report:
        path = Path(args.report)
        if not path.is_file():
            raise SystemExit(f"signal_quality: no saved run at {path}; run the benchmark first (it writes --save)")
        saved = json.loads(path.read_text())
        body = render(saved["rows"], saved["meta"])
        if not args.no_write:
            write_section("signal_quality", "Accuracy signals and how far to trust them", body)
        print(body)
        return 0

    if args.quick:
        args.mutations, args.random, args.long_steps = 1, 1, 16
        args.fidelities, args.large_fidelities, args.check_steps, args.check_designs = "2", "2", 8, 3
        args.n_train, args.n_val, args.bn_images, args.no_write = 600, 200, 128, True
        args.save = "runs/signal_quality-quick.json"
    fidelities = parse_steps(args.fidelities, "--fidelities")
    large = parse_steps(args.large_fidelities, "--large-fidelities") if args.large_fidelities.strip() else []
    if args.long_steps < 8 * max(fidelities + large):
        print(f"note: --long-steps {args.long_steps} is less than 8× the longest short run", file=sys.stderr)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    seeds = [args.seed, args.seed + 1]
    reference = [run_key("ref", args.dataset, args.input, args.long_steps, s) for s in seeds]
    short = [run_key("short", args.dataset, args.input, k, args.seed + 2) for k in fidelities]
    short += [run_key("short", args.dataset, args.large_input, k, args.seed + 2) for k in large]
    check = None
    if args.check_dataset != "none":
        check = run_key("check", args.check_dataset, args.input, args.check_steps or args.long_steps, args.seed)
    sizes = sorted({args.input, *([args.large_input] if large else [])})
    designs = make_designs(args.mutations, args.random, args.seed, sizes)
    splits: dict[tuple[str, int], DataSplit] = {}
    for key in [*reference, *short, *([check] if check else [])]:
        ds, size, _steps, _seed = parse_key(key)
        if (ds, size) not in splits:
            splits[(ds, size)] = load_dataset(ds, size, 0, n_train=args.n_train, n_val=args.n_val)
    profile = load_profile("host")
    calibrated = profile.calibration is not None
    profile_note = "as calibrated on this host" if calibrated else "uncalibrated: its generic factors"
    split = splits[(args.dataset, args.input)]
    meta = {"command": "python benchmarks/signal_quality.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip(),
            "dataset": args.dataset, "input": args.input, "large_input": args.large_input,
            "long_steps": args.long_steps, "seeds": seeds, "seed": args.seed, "reference": reference, "short": short,
            "check": check, "profile_note": profile_note, "n_train": len(split.train_y), "n_val": len(split.val_y),
            "threads": args.threads}
    plans = []
    for i in range(len(designs)):
        plan = [(k, *parse_key(k)) for k in (*short, *reference)]
        if check and (args.check_designs <= 0 or i < args.check_designs):
            plan.append((check, *parse_key(check)))
        plans.append(plan)
    print(f"{len(designs)} designs; {sum(len(p) for p in plans)} training runs", flush=True)
    compute_proxies(designs[0][1], args.input, 64, args.seed + 2, args.dataset, data=split)  # warm-up, not timed

    rows: list[dict[str, Any]] = []
    save = Path(args.save)
    save.parent.mkdir(parents=True, exist_ok=True)
    for i, ((origin, spec), plan) in enumerate(zip(designs, plans, strict=True)):
        t = time.perf_counter()
        rows.append(measure_design(origin, spec, plan, splits, args, profile))
        r = rows[-1]
        print(f"[{i + 1}/{len(designs)}] {r['name']}: {r['latency_ms']:.1f} ms pred., "
              + ", ".join(f"{k.split(':')[0]} {k.split(':')[2]}px {k.split(':')[3]}st "
                          f"{100 * v['acc']:.1f}% ({v['seconds']:.0f}s)" for k, v in r["runs"].items())
              + f"; design {time.perf_counter() - t:.0f} s, elapsed {(time.perf_counter() - start) / 60:.1f} min",
              flush=True)
        meta["wall_s"] = time.perf_counter() - start
        save.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))

    meta["wall_s"] = time.perf_counter() - start
    save.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    for k, what in (("latency_ms", "predicted"), ("measured_ms", "measured")):
        lat = [r[k] for r in rows]
        print(f"{what} host latency range: {min(lat):.2f}–{max(lat):.2f} ms ({max(lat) / min(lat):.1f}×)")
    body = render(rows, meta)
    if not args.no_write:
        write_section("signal_quality", "Accuracy signals and how far to trust them", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
