"""``explorer train SPEC --dataset digits|shapes|PATH [--steps N | --minutes M] [--input 32] [--seed S] [--json]``.

Trains the design for the dataset (see ``explorer/train.py`` for the recipe), stores the run, its
curve and weights in the store (``--db``, default ``$EXPLORER_DB`` or ``runs/explorer.sqlite``) and
prints the result; ``--json`` prints one object with ``run_id, steps, seconds, final_train_loss,
val_accuracy, images_per_s`` and more. A progress bar goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..store import StepRow, Store
from .common import add_db_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="a short training run of a design (stored with its curve and weights)")
    p.add_argument("spec", metavar="SPEC", help="a preset name or a YAML/JSON spec path")
    p.add_argument("--dataset", default="digits", metavar="NAME|PATH",
                   help="digits, shapes, a CIFAR-10 python-batches directory or an ImageFolder directory "
                        "(default digits)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=None, metavar="N", help="optimizer steps (default 100)")
    budget.add_argument("--minutes", type=float, default=None, metavar="M", help="train for M minutes instead")
    p.add_argument("--input", type=int, default=32, metavar="SIZE", help="square input size (default 32)")
    p.add_argument("--batch", type=int, default=64, metavar="B", help="batch size (default 64)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (default 0.002)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, batch order and augmentation")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="default: CUDA when present")
    p.add_argument("--no-augment", action="store_true", help="train without crop and flip")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..design import load_design
    from ..train import make_config, train

    spec = load_design(args.spec)
    kwargs = dict(dataset=args.dataset, input_size=args.input, batch_size=args.batch, lr=args.lr, seed=args.seed,
                  device=args.device, augment=not args.no_augment)
    if args.minutes is not None:
        kwargs["minutes"] = args.minutes
    else:
        kwargs["steps"] = args.steps if args.steps is not None else 100
    config = make_config(**kwargs)

    from tqdm import tqdm

    bar = tqdm(total=config.steps if config.minutes is None else None, unit="step", file=sys.stderr,
               disable=None if not args.json else True, dynamic_ncols=True, desc=spec.name)
    last = 0

    def on_step(point: StepRow) -> None:
        nonlocal last
        bar.update(point.step - last)
        last = point.step
        post = {}
        if point.train_loss is not None:
            post["loss"] = f"{point.train_loss:.3f}"
        if point.val_accuracy is not None:
            post["val"] = f"{point.val_accuracy:.3f}"
        bar.set_postfix(post, refresh=False)

    with Store(args.db) as store:
        try:
            result = train(spec, config, on_step=on_step, store=store)
        finally:
            bar.close()
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    acc = f"{100 * result.val_accuracy:.1f} %" if result.val_accuracy is not None else "n/a"
    loss = f"{result.final_train_loss:.3f}" if result.final_train_loss is not None else "n/a"
    size = f"{result.input_size}×{result.input_size}"
    print(f"run {result.run_id} {result.status}: {spec.name} on {result.dataset} at {size}, "
          f"{result.steps} steps in {result.seconds:.1f} s on {result.device} ({result.images_per_s:.0f} images/s)")
    print(f"  final train loss {loss}, val accuracy {acc}")
    print(f"  weights {result.weights_path}; store {store.path}")
    return 0
