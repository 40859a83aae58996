"""``explorer weights import PRESET FILE -o weights.pt [--no-verify] [--json]``: a timm checkpoint onto a preset.

Maps timm's tensors (``.safetensors`` or ``.pth``, read without running code) onto the peer preset
(by name where the names tell, by order and shape otherwise; the first misfit is refused), checks
the logits against timm's own model when timm can be imported here, and writes an explorer
checkpoint (``explorer evaluate --weights``, ``explorer quantize --weights``). Nothing is
downloaded: timm keeps what a user fetched in ``~/.cache/huggingface/hub`` (see the README).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="import pretrained weights (a timm checkpoint) onto a preset")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    imp = actions.add_parser("import", help="map a timm .safetensors/.pth checkpoint onto a peer preset")
    imp.add_argument("preset", metavar="PRESET", help="a peer preset (mobilenetv3_large, fbnet_c, ...)")
    imp.add_argument("file", type=Path, metavar="FILE", help="timm's checkpoint: .safetensors or .pth")
    imp.add_argument("-o", "--output", type=Path, required=True, metavar="weights.pt", help="the explorer checkpoint")
    imp.add_argument("--no-verify", action="store_true", help="skip the comparison with timm's model")
    imp.add_argument("--json", action="store_true", help="print one JSON object")
    imp.set_defaults(func=run)
    p.set_defaults(func=lambda _args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..weights_import import import_timm_weights

    report = import_timm_weights(args.preset, args.file, args.output, verify=not args.no_verify)
    if args.json:
        print(json.dumps(asdict(report)))
        return 0
    check = (f"logits match timm's {report.timm_name} (relative difference {report.relative_error:.1e})"
             if report.verified else "not compared with timm (timm is not importable here, or --no-verify)")
    print(f"wrote {report.path}: {report.tensors} tensors of {args.file.name} onto {report.preset} "
          f"(matched by {report.matched_by}); {check}")
    return 0
