"""int8 vs fp32 for every preset: latency, speed-up, file size, accuracy drop and agreement.

Each preset gets the same short training (``--steps`` AdamW steps of ``explorer.train``'s recipe on
``--dataset`` at ``--input``², seed 0; on CUDA when present), then ``explorer.quantize``: the trained
network exported to fp32 ONNX, quantized statically (QDQ, per-channel int8 weights, uint8
activations, ``--method`` calibration on ``--calib`` training images), both graphs' top-1 on the
whole validation split and their agreement, and both timed in ONNX Runtime on this CPU, 1 intra-op
thread, ``--runs`` interleaved rounds (fp32, int8, fp32, int8, …; medians), so that load from other
work falls on both alike. The speed-up is fp32 ms / int8 ms; the drop is fp32 top-1 − int8 top-1 in
points.

Goals (issue 12): AttendNeXt's int8 speed-up ≥ 1.3× and ≥ MobileNetV3-L's; a drop ≤ 1 point for
every preset.

    python benchmarks/int8.py [--steps 300] [--dataset digits] [--input 192] [--calib 200] [--runs 60]

Writes the ``int8`` section of ``benchmarks/RESULTS.md`` (``--no-write``: print only).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from results import markdown_table, write_section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="*", default=None, help="default: every preset")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--input", type=int, default=192)
    parser.add_argument("--calib", type=int, default=200)
    parser.add_argument("--method", default="minmax")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--eval-threads", type=int, default=1, help="threads of the accuracy sessions (not timing)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from explorer.data import load_dataset
    from explorer.design import load_preset
    from explorer.presets import list_presets
    from explorer.quantize import quantize
    from explorer.train import make_config, train

    names = args.presets or list_presets()
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
            r = quantize(name, Path(tmp) / f"{name}-int8.onnx", weights=trained.weights_path, dataset=args.dataset,
                         calib=args.calib, runs=args.runs, method=args.method, eval_threads=args.eval_threads)
            results[name] = r
            print(f"{name}: train {t1 - t0:.0f} s, quantize {time.perf_counter() - t1:.0f} s; fp32 {r.fp32_ms:.2f} ms, "
                  f"int8 {r.int8_ms:.2f} ms ({r.speedup:.2f}x), top-1 {100 * r.fp32_accuracy:.1f} -> "
                  f"{100 * r.int8_accuracy:.1f} %, agreement {100 * r.top1_agreement:.1f} %", flush=True)
            rows.append([name, f"{r.fp32_ms:.2f}", f"{r.int8_ms:.2f}", f"**{r.speedup:.2f}×**",
                         f"{r.fp32_bytes / 2**20:.2f}", f"{r.int8_bytes / 2**20:.2f}",
                         f"{100 * r.fp32_accuracy:.1f}", f"{100 * r.int8_accuracy:.1f}",
                         f"{100 * (r.fp32_accuracy - r.int8_accuracy):+.1f}", f"{100 * r.top1_agreement:.1f}"])
    headers = ["preset", "fp32 ms", "int8 ms", "speed-up", "fp32 MiB", "int8 MiB", "fp32 top-1 %", "int8 top-1 %",
               "drop (points)", "agreement %"]
    table = markdown_table(headers, rows)
    goals = []
    if "attendnext" in results:
        a = results["attendnext"].speedup
        goals.append(f"- AttendNeXt int8 speed-up ≥ 1.3×: {a:.2f}× — {'met' if a >= 1.3 else '**not met**'}")
        if "mobilenetv3_large" in results:
            m = results["mobilenetv3_large"].speedup
            goals.append(f"- AttendNeXt's speed-up ≥ MobileNetV3-L's ({m:.2f}×): "
                         f"{'met' if a >= m else '**not met**'}")
    worst = max(results.items(), key=lambda kv: kv[1].fp32_accuracy - kv[1].int8_accuracy)
    drop = 100 * (worst[1].fp32_accuracy - worst[1].int8_accuracy)
    goals.append(f"- accuracy drop ≤ 1 point for every preset: worst {worst[0]} {drop:+.1f} — "
                 f"{'met' if drop <= 1.0 else '**not met**'}")
    body = (f"`python benchmarks/int8.py --steps {args.steps} --dataset {args.dataset} --input {args.input} "
            f"--calib {args.calib} --method {args.method} --runs {args.runs}`: each preset trained {args.steps} "
            f"steps on {data.describe()} ({device}), quantized with `explorer.quantize` (ONNX Runtime static QDQ, "
            f"per-channel int8 weights, uint8 activations, {args.method} calibration on {args.calib} training "
            f"images), verified on all {len(data.val_y)} validation images and timed at {args.input}² in ONNX "
            f"Runtime, 1 thread, {args.runs} interleaved rounds (medians) on this CPU.\n\n{table}\n\n"
            + "\n".join(goals) + "\n")
    print(body)
    if not args.no_write:
        write_section("int8", "int8 vs fp32 (`python benchmarks/int8.py`)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
