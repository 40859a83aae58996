"""AttendNeXt in int8: the condenser's deployment choices, fp32 vs int8, interleaved, one thread.

Each variant is the AttendNeXt preset with its three double-condensing attention condensers set
differently (``blocks/attention_condenser.py`` documents each choice):

- ``published``: the preset as it was (grouped embedding conv, gate σ and scale S at full resolution);
- ``gate_at=condensed``: σ and S on the condensed map before the upsampling (same outputs);
- ``deploy_embed=depthwise``: the grouped embedding conv deployed as depth-wise + fixed sum (same outputs);
- ``both``: the two together (same outputs) -- what the preset now uses;
- ``both + hard_sigmoid``: also the hard-sigmoid gate (another function: needs training);

plus MobileNetV3-L and FBNet-C for reference. The post-fusion BatchNorm is folded in every
variant (``reparameterize``, exact). Each design's int8 graph is timed twice: as ONNX Runtime's
quantizer leaves it (HardSwish in fp32 between dequantize and quantize nodes) and with every
HardSwish rewritten as x · Clip(x + 3, 0, 6) · ⅙ before quantization (``hardswish="clip"`` of
``explorer.latency.qdq``: the same fp32 function, its Add and Mul then run in int8; its accuracy
effect is measured by ``benchmarks/int8.py --hardswish clip``, not here).

Weights: the seeded initialisation with every BatchNorm's statistics and affine parameters drawn
at random, as after training (fresh BatchNorms fold to identical zero biases, which the exporter
merges and the quantizer then leaves in fp32: not what a trained network shows). Int8 is
ONNX Runtime static QDQ quantization (per-channel int8 weights, uint8 activations,
``quant_pre_process`` first) calibrated on seeded random inputs
(``explorer.latency.op_profile.quantize_for_timing``): right for timing, meaningless for accuracy.

Timing: every model in its own ONNX Runtime session, 1 intra-op thread; ``--rounds`` rounds each
run every model ``--runs`` times, interleaved, so load from other work falls on all alike. The
time of a run is the calling thread's CPU time (``time.thread_time``: with one intra-op thread
ONNX Runtime runs the graph on the caller's thread), so other processes on a shared machine
inflate it far less than wall-clock time; a model's time is the median over all its runs.
Speed-up = fp32 time / int8 time (> 1: int8 is faster).

    python benchmarks/int8_condenser.py [--rounds 15] [--runs 10] [--designs both mobilenetv3_large]

Writes the ``int8_condenser`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import markdown_table, write_section

VARIANTS: dict[str, dict[str, Any]] = {
    "published": {"gate_at": "full", "deploy_embed": "grouped"},
    "gate_at=condensed": {"gate_at": "condensed", "deploy_embed": "grouped"},
    "deploy_embed=depthwise": {"gate_at": "full", "deploy_embed": "depthwise"},
    "both": {"gate_at": "condensed", "deploy_embed": "depthwise"},
    "both + hard_sigmoid": {"gate_at": "condensed", "deploy_embed": "depthwise", "gate": "hard_sigmoid"},
}
PEERS = ("mobilenetv3_large", "fbnet_c")


def attendnext_variant(options: dict[str, Any]) -> Any:
    """The AttendNeXt preset with ``options`` on every attention condenser."""
    from explorer.design import load_design, load_preset

    data = load_preset("attendnext").to_dict()
    for stage in data["stages"]:
        for block in stage["blocks"]:
            if block.get("type") == "attention_condenser":
                block.update(options)
    return load_design(data)


def trained_like_onnx(spec: Any, seed: int = 0) -> bytes:
    """ONNX of ``spec`` with BatchNorm statistics drawn as after training (see the module docstring)."""
    import torch

    from explorer.build import build_model, reparameterize
    from explorer.export import onnx_bytes

    torch.manual_seed(seed)
    model = build_model(spec)
    gen = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) - 0.5)
    return onnx_bytes(spec, reparameterize(model).eval())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--designs", nargs="+", default=None, metavar="NAME",
                        help=f"only these rows (default: all of {', '.join([*VARIANTS, *PEERS])})")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    args = parser.parse_args()

    import numpy as np
    from tqdm import tqdm

    from explorer.analysis import analyze
    from explorer.design import load_preset
    from explorer.latency.agent import make_session
    from explorer.latency.op_profile import quantize_for_timing

    specs = {name: attendnext_variant(opts) for name, opts in VARIANTS.items()}
    specs.update({peer: load_preset(peer) for peer in PEERS})
    if args.designs:
        if unknown := [d for d in args.designs if d not in specs]:
            raise SystemExit(f"--designs {unknown[0]!r}: use {', '.join(specs)}")
        specs = {name: spec for name, spec in specs.items() if name in args.designs}
    sessions: dict[tuple[str, str], Any] = {}
    feeds: dict[str, dict[str, Any]] = {}
    macs: dict[str, int] = {}
    for name, spec in tqdm(specs.items(), desc="export + quantize", file=sys.stderr):
        fp32 = trained_like_onnx(spec)
        sessions[(name, "fp32")] = make_session(fp32, 1)
        sessions[(name, "int8")] = make_session(quantize_for_timing(fp32), 1)
        sessions[(name, "int8 hs")] = make_session(quantize_for_timing(fp32, hardswish="clip"), 1)
        x = np.random.default_rng(0).standard_normal((1, spec.input.channels, *spec.input.hw)).astype(np.float32)
        feeds[name] = {"input": x}
        macs[name] = analyze(spec).macs
    times: dict[tuple[str, str], list[float]] = {key: [] for key in sessions}
    for key, session in sessions.items():  # warm-up
        for _ in range(3):
            session.run(None, feeds[key[0]])
    for _ in tqdm(range(args.rounds), desc="interleaved rounds", file=sys.stderr):
        for key, session in sessions.items():
            for _ in range(args.runs):
                t0 = time.thread_time()
                session.run(None, feeds[key[0]])
                times[key].append((time.thread_time() - t0) * 1e3)
    ms = {key: statistics.median(v) for key, v in times.items()}
    rows = []
    for name in specs:
        fp, q, qh = ms[(name, "fp32")], ms[(name, "int8")], ms[(name, "int8 hs")]
        rows.append([name, f"{macs[name] / 1e9:.3f}", f"{fp:.2f}", f"{q:.2f}", f"{fp / q:.2f}×", f"{qh:.2f}",
                     f"{fp / qh:.2f}×"])
    table = markdown_table(["design", "GMACs", "fp32 ms", "int8 ms", "int8 speed-up", "int8 ms, HardSwish in int8",
                            "speed-up, HardSwish in int8"], rows)
    print(table)
    if args.no_write:
        return
    body = (
        f"`python benchmarks/int8_condenser.py --rounds {args.rounds} --runs {args.runs}"
        + (f" --designs {' '.join(args.designs)}" if args.designs else "") + "`: ONNX Runtime, 1 thread, "
        f"static QDQ int8 (per-channel weights, uint8 activations) calibrated on random inputs (timing only); "
        f"median thread CPU time over {args.rounds} interleaved rounds × {args.runs} runs. The machine was shared "
        f"with other work during the run: compare rows with each other, not with other sections.\n\n{table}\n\n"
        "`published` is AttendNeXt's condenser as it was written (its post-fusion BatchNorm folded, as every row "
        "now deploys it: the fold's own effect is not separated here); `both` (gate on the condensed map, "
        "grouped embedding deployed depth-wise, post-fusion BatchNorm folded: all exact refactorings of the same "
        "function) is what "
        "the preset now uses; `hard_sigmoid` changes the function and needs training. \"HardSwish in int8\": "
        "the same int8 graph with every HardSwish rewritten as x·Clip(x+3, 0, 6)/6 before quantization "
        "(`explorer quantize --hardswish clip`; the same fp32 function)."
    )
    path = write_section("int8_condenser", "AttendNeXt's condenser in int8 (`python benchmarks/int8_condenser.py`)",
                         body)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
