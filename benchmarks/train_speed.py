"""Is the explorer's training loop lean? Images/s of ``explorer.train`` against a bare PyTorch loop.

Both loops train the same design (AttendNeXt at 32×32, 10 classes, batch 64) on the same in-memory
digits with the same math per step: a shuffled batch, the same crop/flip augmentation, forward,
label-smoothed cross-entropy, backward, AdamW. The bare loop does nothing else; ours also sets the
scheduled learning rate, reads the cancel flag, accumulates the loss on the device, reads it back
every 10 steps and commits a curve point to a SQLite store (a temporary file) each time. Only the
step loop is timed (no set-up, no evaluation); the two alternate, ``--repeats`` times each, and
the overhead is 1 − ours / bare per pair (median over pairs; target ≤ 5 %).

    python benchmarks/train_speed.py                         # CPU (and CUDA when present)
    python benchmarks/train_speed.py --device cuda --steps 300 --json-out gpu.json --no-write
    python benchmarks/train_speed.py --include gpu.json      # add a row measured elsewhere

The table goes to ``benchmarks/RESULTS.md`` (section ``train_speed``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn as nn

from benchmarks.results import markdown_table, write_section
from explorer.build import build_model
from explorer.data import DataSplit, load_dataset
from explorer.design import load_design, retarget
from explorer.spec import ArchitectureSpec
from explorer.store import Store
from explorer.train import augment_batch, make_config, seed_everything, train


def bare_loop(spec: ArchitectureSpec, data: DataSplit, steps: int, batch: int, device: torch.device, seed: int,
              channels_last: bool, amp: bool) -> float:
    """The plainest loop with the same per-step math; returns images/s of the step loop."""
    seed_everything(seed)
    model = build_model(spec).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # accepted, not in the stub
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05, foreach=True)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    x_all, y_all = data.train_x.to(device), data.train_y.to(device)
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    pad, flip = max(1, data.input_size // 8), data.flip_ok
    perm, pos = torch.randperm(len(y_all), generator=g, device=device), 0
    start = time.perf_counter()
    for _ in range(steps):
        if pos + batch > len(perm):
            perm, pos = torch.randperm(len(y_all), generator=g, device=device), 0
        idx = perm[pos:pos + batch]
        pos += batch
        x = augment_batch(x_all[idx], pad, flip, g).contiguous(memory_format=fmt)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = crit(model(x), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch / (time.perf_counter() - start)


def ours(spec: ArchitectureSpec, data: DataSplit, steps: int, batch: int, device: torch.device, seed: int,
         store: Store) -> float:
    config = make_config(steps=steps, batch_size=batch, seed=seed, device=device.type, eval_every=0, log_every=10,
                         bn_images=0, input_size=data.input_size)
    return train(spec, config, store=store, data=data).images_per_s


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(preset: str, device: torch.device, steps: int, repeats: int, seed: int = 0) -> dict:
    data = load_dataset("digits", 32)
    spec = retarget(load_design(preset), input_size=32, num_classes=data.num_classes)
    cuda = device.type == "cuda"
    pairs = []
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.sqlite") as store:
        ours(spec, data, max(5, steps // 5), 64, device, seed, store)  # warm-up: allocator, kernels, caches
        bare_loop(spec, data, max(5, steps // 5), 64, device, seed, cuda, cuda)
        for r in range(repeats):
            order = ("ours", "bare") if r % 2 == 0 else ("bare", "ours")
            got = {}
            for which in order:
                got[which] = (ours(spec, data, steps, 64, device, seed, store) if which == "ours"
                              else bare_loop(spec, data, steps, 64, device, seed, cuda, cuda))
            pairs.append(got)
            print(json.dumps({"repeat": r, **{k: round(v, 1) for k, v in got.items()}}), flush=True)
    name = torch.cuda.get_device_name(device) if cuda else _cpu_name()
    return {
        "device": str(device), "device_name": name, "threads": torch.get_num_threads(), "preset": preset,
        "steps": steps, "repeats": repeats, "torch": torch.__version__,
        "ours_ips": statistics.median(p["ours"] for p in pairs),
        "bare_ips": statistics.median(p["bare"] for p in pairs),
        "overhead": statistics.median(1 - p["ours"] / p["bare"] for p in pairs),
        "overheads": [round(1 - p["ours"] / p["bare"], 4) for p in pairs],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="attendnext")
    ap.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    ap.add_argument("--steps", type=int, default=None, help="steps per timed loop (default 30 on CPU, 300 on CUDA)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json-out", default=None, help="also write the measured rows as JSON")
    ap.add_argument("--include", action="append", default=[], help="add rows from an earlier --json-out")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)

    devices = []
    if args.device in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    if args.device == "cuda" and not devices:
        print("no CUDA device here", file=sys.stderr)
        return 2
    rows = [measure(args.preset, d, args.steps or (300 if d.type == "cuda" else 30), args.repeats) for d in devices]
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2))
    included = [r | {"included_from": p} for p in args.include for r in json.loads(Path(p).read_text())]
    table = markdown_table(
        ["device", "torch threads", "steps × repeats", "ours (images/s)", "bare loop (images/s)", "overhead (median)",
         "overhead per pair"],
        [[f"{r['device']} ({r['device_name']})" + (" †" if "included_from" in r else ""), r["threads"],
          f"{r['steps']} × {r['repeats']}", f"{r['ours_ips']:.0f}", f"{r['bare_ips']:.0f}",
          f"{100 * r['overhead']:+.1f} %", ", ".join(f"{100 * o:+.1f}" for o in r["overheads"])]
         for r in rows + included])
    note = ""
    if included:
        note = ("\n† measured on another machine by `python benchmarks/train_speed.py --device cuda --json-out …` "
                f"(torch {', '.join(sorted({r['torch'] for r in included}))}) and copied in with `--include`.\n")
    has_cuda = any(r["device"].startswith("cuda") for r in rows + included)
    cuda_note = "" if has_cuda else "\nNo CUDA device was available for this run, so there is no GPU row.\n"
    body = (f"`python benchmarks/train_speed.py` — {args.preset} at 32×32, batch 64, digits in memory; our loop "
            "(`explorer.train`: scheduled LR, cancel check, loss read back and a curve point committed to SQLite "
            "every 10 steps) against a bare PyTorch loop with the same per-step math, alternating. "
            "Overhead = 1 − ours / bare "
            f"(target ≤ 5 %; negative means ours was faster in that pair, i.e. noise).\n\n{table}\n{note}{cuda_note}")
    if not args.no_write:
        write_section("train_speed", "Training loop overhead", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
