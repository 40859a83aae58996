"""``explorer quantize SPEC (--run ID | --train-steps N | --weights W) [--fp32 UNITS] -o FILE.onnx``: int8.

Static QDQ quantization (per-channel int8 weights, ``quant_pre_process`` first) calibrated on
``--calib`` ≥ 100 real images, then verified and timed: fp32 and int8 top-1 on the validation split,
their top-1 agreement, latency of both (interleaved, 1 thread) and both file sizes (see
``explorer/quantize.py``). ``--json`` prints one object with ``fp32_accuracy, int8_accuracy,
top1_agreement, fp32_ms, int8_ms, fp32_bytes, int8_bytes, path`` (and the design, dataset, images,
calibration method and the units kept in fp32). ``--fp32 stem`` (a stage, a unit such as ``s2.b3``,
or a block type) leaves those units unquantized; ``--method`` picks the activation-range calibration.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import add_db_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quantize", help="int8 static quantization of a trained design in ONNX Runtime, verified and "
                                        "timed against fp32")
    p.add_argument("spec", metavar="SPEC", help="a preset name or a YAML/JSON spec path")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--run", type=int, default=None, metavar="ID", help="a stored run's trained weights")
    src.add_argument("--train-steps", type=int, default=None, metavar="N",
                     help="train N steps first (stored as a run), then quantize")
    src.add_argument("--weights", type=Path, default=None, metavar="W",
                     help="a weights file (explorer checkpoint, e.g. from explorer weights import)")
    p.add_argument("--dataset", default=None, metavar="NAME|PATH",
                   help="calibration and validation data (default: the run's dataset, else digits); with --weights "
                        "an ImageFolder is read with ImageNet preprocessing")
    p.add_argument("--calib", type=int, default=100, metavar="N", help="calibration images (at least 100; default 100)")
    p.add_argument("--val-images", type=int, default=None, metavar="N",
                   help="validate on at most N images (default: the whole validation split)")
    p.add_argument("--runs", type=int, default=50, help="interleaved timing rounds (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration draw (and of --train-steps)")
    p.add_argument("--method", default="minmax", metavar="M",
                   help="activation-range calibration: minmax (default), percentile or entropy")
    p.add_argument("--hardswish", choices=("keep", "clip"), default="keep",
                   help="clip: rewrite HardSwish as x·clip(x+3,0,6)/6 so it runs in int8 (same fp32 function; "
                        "default keep: fp32 between quantize/dequantize)")
    p.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor (default: per channel)")
    p.add_argument("--fp32", action="append", default=[], metavar="UNITS",
                   help="leave units in fp32: a unit (s2.b3, head), a stage (stem, s1) or a block type; "
                        "comma-separated or repeated")
    add_db_option(p)
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.onnx", help="where the int8 model goes")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..design import load_design
    from ..quantize import check_output, fp32_units, quantize
    from ..store import Store

    check_output(args.output)  # before any store is opened or anything trained
    if args.run is None and args.train_steps is None and args.weights is None:
        raise ValueError("quantize needs trained weights: give --run ID, --train-steps N or --weights FILE "
                         "(an untrained network's accuracy means nothing)")
    if args.train_steps is not None and args.train_steps < 1:
        raise ValueError(f"--train-steps {args.train_steps}: give at least 1")
    bar = tqdm(total=100, unit="%", file=sys.stderr, disable=True if args.json else None, leave=False,
               bar_format="{desc} {percentage:3.0f}%|{bar}|")

    def progress(fraction: float, desc: str) -> None:
        bar.set_description_str(desc, refresh=False)
        bar.update(round(100 * fraction) - bar.n)

    keep = [k.strip() for item in args.fp32 for k in item.split(",") if k.strip()]
    if keep:  # a bad unit name is refused before any store is opened or anything trained
        fp32_units(load_design(args.spec), keep)
    common = {"calib": args.calib, "seed": args.seed, "runs": args.runs, "max_val": args.val_images,
              "method": args.method, "per_channel": not args.per_tensor, "hardswish": args.hardswish, "keep_fp32": keep,
              "progress": progress}
    try:
        if args.weights is not None:
            result = quantize(args.spec, args.output, weights=args.weights, dataset=args.dataset, **common)
        else:
            with Store(args.db) as store:
                result = quantize(args.spec, args.output, run_id=args.run, train_steps=args.train_steps,
                                  dataset=args.dataset, store=store, **common)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    run_note = f", run {result.run_id}" if result.run_id is not None else ""
    weights = "per-channel" if result.per_channel else "per-tensor"
    kept = f"; kept in fp32: {', '.join(result.fp32_units)}" if result.fp32_units else ""
    print(f"wrote {result.path}: {result.design} int8 (QDQ, {weights} weights), {result.method} calibration on "
          f"{result.calib_images} images of {result.dataset}{run_note}{kept}")
    print(f"  {'':8s} {'top-1':>7s} {'ms':>8s} {'MiB':>7s}")
    print(f"  {'fp32':8s} {100 * result.fp32_accuracy:6.1f}% {result.fp32_ms:8.3f} {result.fp32_bytes / 2**20:7.2f}")
    print(f"  {'int8':8s} {100 * result.int8_accuracy:6.1f}% {result.int8_ms:8.3f} {result.int8_bytes / 2**20:7.2f}")
    print(f"  top-1 agreement {100 * result.top1_agreement:.1f}% on {result.val_images} validation images; "
          f"int8 speed-up {result.speedup:.2f}× (ONNX Runtime, 1 thread, interleaved, this machine)")
    return 0
