"""Every preset side by side in ONNX Runtime on this host: latency, ratio to AttendNeXt, GMAC/s.

One run, one process: each preset is exported (reparameterised, batch 1, its native input size)
and loaded in an ONNX Runtime CPU session with 1 intra-op thread; after ``--warmup`` runs of each,
``--rounds`` rounds each run every preset once, *interleaved*, so that load from other work on
this shared machine falls on all presets alike; a preset's latency is the median of its rounds.

- ``ratio``: preset latency / AttendNeXt latency (> 1: AttendNeXt is faster);
- achieved GMAC/s: fvcore MACs / latency; against this host's single-thread matmul peak, measured
  as the best of ``--peak-reps`` 1024×1024×1024 fp32 matmuls in PyTorch with 1 thread
  (2·1024³ FLOP each; 1 MAC = 2 FLOP, so the MAC peak is half the FLOP peak);
- the paper's claims (arXiv 2208.06980, on an embedded ARM Cortex-A72 CPU) checked as ratios:
  AttendNeXt > 10× the throughput of FBNet-C and of MobileOne-S1, and faster than
  MobileNetV3-L and MobileViT-XS.

    python benchmarks/latency_table.py [--rounds 60] [--warmup 10]

Writes the ``latency_table`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import machine, markdown_table, write_section

#: (peer, claimed speed-up of AttendNeXt over it, the paper's wording)
CLAIMS = (
    ("fbnet_c", 10.0, "> 10x the throughput of FBNet-C"),
    ("mobileone_s1", 10.0, "> 10x the throughput of MobileOne-S1"),
    ("mobilenetv3_large", 1.0, "faster than MobileNetV3-L"),
    ("mobilevit_xs", 1.0, "faster than MobileViT-XS"),
)


def matmul_peak_gflops(n: int = 1024, reps: int = 10) -> float:
    """Best single-thread fp32 GFLOP/s of an ``n×n @ n×n`` matmul (2·n³ FLOP) in PyTorch."""
    import torch

    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def op_shares(model: bytes, runs: int = 20) -> dict[str, float]:
    """Share of kernel time per ONNX Runtime op type (its profiler, 1 thread, ``runs`` runs)."""
    import json
    import os
    import tempfile

    import onnxruntime as ort

    from explorer.latency.agent import _feeds

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "ort")
        options.log_severity_level = 3
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        feeds = _feeds(session)
        for _ in range(runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            op = e["args"]["op_name"]
            totals[op] = totals.get(op, 0.0) + e["dur"]
    whole = sum(totals.values()) or 1.0
    return {op: t / whole for op, t in sorted(totals.items(), key=lambda kv: -kv[1])}


def main() -> None:
    from explorer.analysis import analyze
    from explorer.design import load_preset
    from explorer.export import onnx_bytes
    from explorer.latency.agent import _feeds, device_facts, make_session, summarize_times
    from explorer.presets import list_presets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="interleaved timed rounds (default 60)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs of each preset first (default 10)")
    parser.add_argument("--peak-reps", type=int, default=10, help="matmuls timed for the peak (default 10)")
    args = parser.parse_args()

    started = time.perf_counter()
    peak = matmul_peak_gflops(reps=args.peak_reps)
    names = list_presets()
    sessions, feeds, macs, sizes = {}, {}, {}, {}
    for name in names:
        spec = load_preset(name)
        a = analyze(spec)
        macs[name] = a.macs + a.uncounted_macs  # MobileViT's attention products run too
        sizes[name] = "x".join(map(str, a.input_shape[2:]))
        sessions[name] = make_session(onnx_bytes(spec), threads=1)
        feeds[name] = _feeds(sessions[name])
    for name in names:
        for _ in range(args.warmup):
            sessions[name].run(None, feeds[name])
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.rounds):
        for name in names:
            t0 = time.perf_counter()
            sessions[name].run(None, feeds[name])
            times[name].append((time.perf_counter() - t0) * 1e3)
    stats = {n: summarize_times(times[n]) for n in names}
    models = {n: onnx_bytes(load_preset(n)) for n in ("attendnext", "mobilenetv3_large")}
    shares = {n: op_shares(m) for n, m in models.items()}
    base = stats["attendnext"]["median_ms"]
    rows = []
    for n in names:
        ms = stats[n]["median_ms"]
        gmacs_per_s = macs[n] / (ms / 1e3) / 1e9
        rows.append([f"`{n}`", sizes[n], f"{macs[n] / 1e9:.3f}", f"{ms:.2f}", f"{stats[n]['p90_ms']:.2f}",
                     f"{stats[n]['cv']:.2f}", f"{ms / base:.2f}", f"{gmacs_per_s:.1f}",
                     f"{100 * gmacs_per_s / (peak / 2):.1f} %"])
    claim_rows = []
    for peer, claimed, wording in CLAIMS:
        measured = stats[peer]["median_ms"] / base
        claim_rows.append([wording, f"> {claimed:g}x" if claimed > 1 else "> 1x", f"{measured:.2f}x",
                           "yes" if measured > claimed else "**no**"])
    ops = list(shares["attendnext"])[:8]
    share_rows = [[op, f"{100 * shares['attendnext'].get(op, 0):.1f} %",
                   f"{100 * shares['mobilenetv3_large'].get(op, 0):.1f} %"] for op in ops]
    share_rows.append(["everything else", f"{100 * (1 - sum(shares['attendnext'].get(o, 0) for o in ops)):.1f} %",
                       f"{100 * (1 - sum(shares['mobilenetv3_large'].get(o, 0) for o in ops)):.1f} %"])
    facts = device_facts()
    elapsed = time.perf_counter() - started
    held = sum(1 for r in claim_rows if r[-1] == "yes")
    body = (
        f"All presets in one process: ONNX Runtime {facts['onnxruntime']} CPU, 1 intra-op thread, batch 1, "
        f"native input size, reparameterised; {args.warmup} warm-up runs each, then {args.rounds} interleaved "
        f"rounds (median, p90, cv = std / mean over the rounds); {elapsed:.0f} s in all. This host's "
        f"single-thread fp32 matmul peak (1024³, PyTorch): **{peak:.1f} GFLOP/s = {peak / 2:.1f} GMAC/s**. "
        f"MACs are fvcore's, plus MobileViT's attention products.\n\n"
        + markdown_table(["preset", "input", "GMACs", "median ms", "p90 ms", "cv", "ratio to AttendNeXt",
                          "GMAC/s", "of matmul peak"], rows)
        + "\n\nThe paper's claims (measured on an embedded ARM Cortex-A72 CPU) as speed-up ratios "
        "(peer latency / AttendNeXt latency) on this host:\n\n"
        + markdown_table(["claim (AttendNeXt ...)", "claimed", "measured here", "reproduced"], claim_rows)
        + "\n\nWhere the time goes (ONNX Runtime's profiler, share of kernel time by op type; `Conv` and "
        "`FusedConv` are convolutions, the rest mostly the attention condensers' pooling, upsampling, sigmoid "
        "gating and the blur-pool padding, plus layout reorders):\n\n"
        + markdown_table(["op type", "attendnext", "mobilenetv3_large"], share_rows)
        + f"\n\n{held} of {len(claim_rows)} claimed ratios hold here. This is our *reconstruction* of AttendNeXt "
        "(its exact layers are not public) on an x86 host, not the paper's network on a Cortex-A72; the paper's "
        "throughput figures are not reproduced by this measurement unless the table says so. The machine is "
        "shared, so compare ratios, not absolute times.\n\n"
        "Reproduce: `python benchmarks/latency_table.py`."
    )
    print(body)
    write_section("latency_table", "Latency of every preset (`python benchmarks/latency_table.py`)", body)
    print(f"\n({machine()})")


if __name__ == "__main__":
    main()
