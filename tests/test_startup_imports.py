"""What ``explorer ui`` pays before its first page: no ``torch._dynamo`` import for building blocks on meta.

On the meta device ``torch.outer`` (and elementwise kernels) import ``torch._dynamo``, and a
format-preserving ``clone()`` sympy through ``torch.fx.experimental.symbolic_shapes``, the first time
they run (seconds); the graph view and the analyzer build every block of the first page on the meta
device, so such ops in a block's constructor put those imports on the start-up path. BlurPool now
builds its binomial kernel from Python numbers (bit-identical to the normalised outer product) and
copies it per channel with ``contiguous()``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from blocks.antialias import _BINOMIAL, BlurPool


def test_blurpool_kernel_is_the_normalised_outer_product() -> None:
    for size in (3, 5):
        taps = torch.tensor(_BINOMIAL[size])
        ref = torch.outer(taps, taps)
        for channels in (1, 6):
            filt = BlurPool(channels, size).filt
            assert torch.equal(filt, (ref / ref.sum()).expand(channels, 1, size, size)) and filt.is_contiguous()


def test_the_first_pages_graph_and_analyzer_do_not_import_dynamo(tmp_path: Path) -> None:
    """With the analysis cache warm (the usual start; a cold start counts with fvcore, which imports it anyway)."""
    code = (
        "import sys\n"
        "from explorer.analysis_cache import preset_analysis\n"
        "from explorer.design_warnings import design_warnings\n"
        "from explorer.graph import design_graph\n"
        "for name in ('attendnext', 'mobilenetv3_large', 'fbnet_c'):\n"
        "    spec, a = preset_analysis(name)\n"
        "    design_graph(spec, a, None); design_warnings(spec, a)\n"
        "print(any(m in sys.modules for m in ('torch._dynamo', 'torch.fx.experimental.symbolic_shapes')))\n"
    )
    env = {**os.environ, "EXPLORER_CACHE_DIR": str(tmp_path / "cache")}
    for _ in range(2):  # the first run fills the cache, the second starts as `explorer ui` usually does
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True,
                             env=env)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]
