"""``explorer export SPEC --format onnx|pt -o FILE [--input N]``: the reparameterised design for deployment."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..design import load_design
from ..export import export


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a design as ONNX (checked and verified) or a PyTorch state dict")
    p.add_argument("spec", metavar="SPEC", help="a preset name or a YAML/JSON spec path")
    p.add_argument("--format", choices=("onnx", "pt"), default=None,
                   help="onnx (checked, verified against PyTorch) or pt (state dict + spec YAML); "
                   "default: from the -o suffix (.pt/.pth -> pt), else onnx")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE")
    p.add_argument("--input", type=int, default=None, metavar="SIZE", help="square input size (default: the spec's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.output.parent.is_dir():
        raise FileNotFoundError(f"folder {args.output.parent} does not exist")
    if args.format is None:
        args.format = "pt" if args.output.suffix.lower() in (".pt", ".pth") else "onnx"
    spec = load_design(args.spec)
    error = export(spec, args.format, args.output, args.input)
    result = {"path": str(args.output), "format": args.format, "bytes": args.output.stat().st_size,
              "relative_error": error}
    if args.json:
        print(json.dumps(result))
    else:
        check = (f"; onnx.checker passed, ONNX Runtime vs PyTorch relative error {error:.2e}" if error is not None
                 else "; load with torch.load(FILE, weights_only=True)")
        print(f"wrote {args.output} ({result['bytes'] / 2**20:.2f} MiB, {args.format}){check}")
    return 0
