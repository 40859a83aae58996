"""int8 vs fp32 for every preset: latency, speed-up, file size, accuracy drop and agreement.

Each preset gets the same short training (``--steps`` AdamW steps of ``explorer.train``'s recipe on
``--dataset`` at ``--input``², seed 0; on CUDA when present), then ``explorer.quantize``: the trained
network exported to fp32 ONNX, quantized statically (QDQ, per-channel int8 weights, uint8
activations, ``--method`` calibration on ``--calib`` training images), both graphs' top-1 on the
whole validation split and their agreement, and both timed in ONNX Runtime on this CPU, 1 intra-op
thread, ``--runs`` interleaved rounds (fp32, int8, fp32, int8, …; medians), so that load from other
work falls on both alike. The speed-up is fp32 ms / int8 ms; the drop is fp32 top-1 − int8 top-1 in
points.

Calibration draws: ``--calib-seeds K`` quantizes each trained network K times, with the
calibration images drawn with seeds 0..K-1; the table shows the mean drop and its range over the
draws (latency is timed on the first draw; later draws time 2 rounds only). ``--methods`` compares
activation-range calibrations (``minmax``, ``percentile``, ``entropy``; one row each, same trained
network), ``--per-tensor`` one weight scale per tensor, and ``--fp32 PRESET=UNITS`` keeps units of
one preset in fp32 (``explorer quantize --fp32``: a stage such as ``stem``, a unit such as ``s2.b3``
or a block type), e.g. ``--fp32 mobileone_s1=stem``; ``--hardswish clip`` rewrites HardSwish so that
it runs in int8 (``explorer quantize --hardswish clip``).

Goals (issue 12): AttendNeXt's int8 speed-up ≥ 1.3× and ≥ MobileNetV3-L's; a drop ≤ 1 point for
every preset.

    python benchmarks/int8.py [--steps 300] [--dataset digits] [--input 192] [--calib 200] [--runs 60]
                              [--calib-seeds 1] [--methods minmax] [--fp32 PRESET=UNITS ...]

Writes the ``int8`` section of ``benchmarks/RESULTS.md`` (``--no-write``: print only).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from results import markdown_table, write_section


def _fp32_choices(items: list[str], names: list[str]) -> dict[str, list[str]]:
    """``PRESET=UNITS[,UNITS]`` items -> {preset: [selectors]}; a malformed item or unknown preset exits 2."""
    out: dict[str, list[str]] = {}
    for item in items:
        preset, sep, units = item.partition("=")
        if not sep or not units or preset not in names:
            raise SystemExit(f"--fp32 {item!r}: give PRESET=UNITS with PRESET one of {', '.join(names)}")
        out.setdefault(preset, []).extend(u for u in units.split(",") if u)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="*", default=None, help="default: every preset")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--input", type=int, default=192)
    parser.add_argument("--calib", type=int, default=200)
    parser.add_argument("--methods", nargs="+", default=["minmax"], help="calibration methods, one row each")
    parser.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor")
    parser.add_argument("--hardswish", choices=("keep", "clip"), default="keep",
                        help="clip: HardSwish rewritten to run in int8 (same fp32 function)")
    parser.add_argument("--calib-seeds", type=int, default=1, metavar="K", help="calibration draws (seeds 0..K-1)")
    parser.add_argument("--fp32", action="append", default=[], metavar="PRESET=UNITS",
                        help="keep these units of PRESET in fp32 (repeatable)")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--eval-threads", type=int, default=1, help="threads of the accuracy sessions (not timing)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from explorer.data import load_dataset
    from explorer.design import load_preset
    from explorer.presets import list_presets
    from explorer.quantize import METHODS, quantize
    from explorer.train import make_config, train

    names = args.presets or list_presets()
    methods = list(dict.fromkeys(args.methods))
    if bad := [m for m in methods if m not in METHODS]:
        raise SystemExit(f"--methods {bad[0]!r}: use {', '.join(METHODS)}")
    if args.calib_seeds < 1:
        raise SystemExit(f"--calib-seeds {args.calib_seeds}: give at least 1")
    keep = _fp32_choices(args.fp32, list_presets())
    data = load_dataset(args.dataset, args.input, 0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="int8-bench-") as tmp:
        for name in names:
            t0 = time.perf_counter()
            config = make_config(dataset=args.dataset, steps=args.steps, input_size=args.input, seed=0,
                                 weights_dir=tmp, device=device)
            trained = train(load_preset(name), config, data=data)
            t1 = time.perf_counter()
            for method in methods:
                draws = [quantize(name, Path(tmp) / f"{name}-int8.onnx", weights=trained.weights_path,
                                  dataset=args.dataset, calib=args.calib, seed=seed,
                                  runs=args.runs if seed == 0 else 2, warmup=10 if seed == 0 else 1, method=method,
                                  per_channel=not args.per_tensor, keep_fp32=keep.get(name, []),
                                  hardswish=args.hardswish,
                                  eval_threads=args.eval_threads)
                         for seed in range(args.calib_seeds)]
                r = draws[0]
                drops = [100 * (d.fp32_accuracy - d.int8_accuracy) for d in draws]
                mean = statistics.fmean(drops)
                results[(name, method)] = (r, mean)
                kept = ",".join(r.fp32_units) or "–"
                print(f"{name} [{method}, fp32: {kept}]: train {t1 - t0:.0f} s; fp32 {r.fp32_ms:.2f} ms, int8 "
                      f"{r.int8_ms:.2f} ms ({r.speedup:.2f}x), top-1 {100 * r.fp32_accuracy:.1f} -> int8 drop "
                      + ", ".join(f"{d:+.1f}" for d in drops) + f" points over {len(drops)} draw(s)", flush=True)
                spread = f"{min(drops):+.1f} … {max(drops):+.1f}" if len(drops) > 1 else "–"
                rows.append([name, method, kept, f"{r.fp32_ms:.2f}", f"{r.int8_ms:.2f}", f"**{r.speedup:.2f}×**",
                             f"{r.fp32_bytes / 2**20:.2f}", f"{r.int8_bytes / 2**20:.2f}",
                             f"{100 * r.fp32_accuracy:.1f}", f"{mean:+.1f}", spread,
                             f"{100 * statistics.fmean(d.top1_agreement for d in draws):.1f}"])
    headers = ["preset", "calibration", "kept fp32", "fp32 ms", "int8 ms", "speed-up", "fp32 MiB", "int8 MiB",
               "fp32 top-1 %", "drop (points, mean)", f"drop range ({args.calib_seeds} draws)", "agreement %"]
    table = markdown_table(headers, rows)
    goals = []
    first = methods[0]
    if ("attendnext", first) in results:
        a = results[("attendnext", first)][0].speedup
        goals.append(f"- AttendNeXt int8 speed-up ≥ 1.3×: {a:.2f}× — {'met' if a >= 1.3 else '**not met**'}")
        if ("mobilenetv3_large", first) in results:
            m = results[("mobilenetv3_large", first)][0].speedup
            goals.append(f"- AttendNeXt's speed-up ≥ MobileNetV3-L's ({m:.2f}×): "
                         f"{'met' if a >= m else '**not met**'}")
    best = {n: min(v[1] for (p, _), v in results.items() if p == n) for n in names}
    worst = max(best.items(), key=lambda kv: kv[1])
    goals.append(f"- accuracy drop ≤ 1 point for every preset (best calibration of each, mean over draws): worst "
                 f"{worst[0]} {worst[1]:+.1f} — {'met' if worst[1] <= 1.0 else '**not met**'}")
    fp32_note = "".join(f" --fp32 {p}={','.join(u)}" for p, u in keep.items())
    command = (f"python benchmarks/int8.py --steps {args.steps} --dataset {args.dataset} --input {args.input} "
               f"--calib {args.calib} --methods {' '.join(methods)} --calib-seeds {args.calib_seeds} --runs {args.runs}"
               + (" --per-tensor" if args.per_tensor else "") + f" --hardswish {args.hardswish}" + fp32_note
               + (f" --presets {' '.join(args.presets)}" if args.presets else ""))
    body = (f"`{command}`: each preset trained {args.steps} steps on {data.describe()} ({device}), quantized with "
            f"`explorer.quantize` (ONNX Runtime static QDQ, {'per-tensor' if args.per_tensor else 'per-channel'} "
            f"int8 weights, uint8 activations, HardSwish {args.hardswish}, calibration on {args.calib} training "
            f"images drawn with seeds 0..{args.calib_seeds - 1}), verified on all {len(data.val_y)} validation "
            f"images and timed at {args.input}² in ONNX Runtime, 1 thread, {args.runs} interleaved rounds (medians) "
            f"on this CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores).\n\n{table}\n\n"
            + "\n".join(goals) + "\n")
    print(body)
    if not args.no_write:
        write_section("int8", "int8 vs fp32 (`python benchmarks/int8.py`)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
