"""``explorer evaluate SPEC --weights W --dataset DIR [--batch B] [--limit N] [--json]``: top-1 / top-5.

The network of ``SPEC`` with the weights of ``W`` (an explorer checkpoint, e.g. from ``explorer weights
import``) on an ImageFolder, with the standard resize / centre-crop / normalise preprocessing
(``explorer/evaluate.py``), batched, with a progress bar. ``--json`` prints ``top1, top5, images,
classes, input_size``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="top-1 / top-5 of a design's weights on an ImageFolder (e.g. ImageNet val)")
    p.add_argument("spec", metavar="SPEC", help="a preset name or a YAML/JSON spec path")
    p.add_argument("--weights", type=Path, required=True, metavar="W", help="an explorer weights file")
    p.add_argument("--dataset", type=Path, required=True, metavar="DIR", help="an ImageFolder: DIR/<class>/<image>")
    p.add_argument("--batch", type=int, default=64, metavar="B", help="images per batch (default 64)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate N images drawn with seed 0")
    p.add_argument("--crop-pct", type=float, default=0.875, help="centre-crop fraction (default 0.875)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..design import load_design
    from ..evaluate import evaluate_folder
    from ..quantize import QuantizeError, weights_for

    if not 0.1 <= args.crop_pct <= 1.0:
        raise ValueError(f"--crop-pct {args.crop_pct}: use a fraction between 0.1 and 1")
    spec = load_design(args.spec)
    try:
        trained_spec, model = weights_for(spec, args.weights, f"weights file {args.weights.name}")
    except QuantizeError as exc:
        raise ValueError(str(exc)) from None
    bar = tqdm(unit="img", file=sys.stderr, disable=True if args.json else None, leave=False, desc=spec.name)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = evaluate_folder(model, args.dataset, trained_spec.input.hw[0], batch_size=args.batch,
                                 crop_pct=args.crop_pct, limit=args.limit, num_classes=trained_spec.num_classes,
                                 progress=progress)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    print(f"{spec.name} with {args.weights.name} on {args.dataset} ({result.images} images, {result.classes} classes, "
          f"{result.input_size}×{result.input_size}): top-1 {100 * result.top1:.2f} %, top-5 {100 * result.top5:.2f} %")
    return 0
