"""``explorer link SPEC [--base URL] [--block S:B]``: print a link that opens the design in the explorer.

``SPEC`` is a preset name or a YAML/JSON file. The link carries the whole design (compressed,
URL-safe; see ``explorer.link``), so it opens the same design on any explorer, without the file.
A design whose link would pass 16 KB is refused with one line (share the YAML file instead).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("link", help="print a URL that opens a design in the explorer")
    p.add_argument("spec", metavar="SPEC", help="a preset name or a .yaml/.json design file")
    p.add_argument("--base", default="http://127.0.0.1:7860/", metavar="URL",
                   help="where the explorer is served (default http://127.0.0.1:7860/)")
    p.add_argument("--block", default=None, metavar="S:B",
                   help="the block to select when the link opens, as stage:block (e.g. 2:1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..design import load_design
    from ..edit import BlockRef, get_entry
    from ..link import design_url

    spec = load_design(args.spec)
    if args.block is not None:
        get_entry(spec, BlockRef.parse(args.block))  # a block the design does not have: one line, exit 2
    print(design_url(spec, args.base, args.block))
    return 0
