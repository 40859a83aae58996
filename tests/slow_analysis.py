"""A stand-in for a huge count, for the tests of the UI's analysis workers (``tests/test_ui_worker.py``).

It lives in its own small module because a worker process imports it by name: the test
module itself would bring Gradio along and slow every worker's start.
"""

from __future__ import annotations

import time

from explorer.analysis import Analysis, Progress, analyze
from explorer.spec import ArchitectureSpec

#: the design name the slow target hangs on
SLOW_NAME = "sleepy"


def sleepy_analyze(spec: ArchitectureSpec, progress: Progress | None = None) -> Analysis:
    """``analyze``, but a design named ``sleepy`` hangs (as a huge count would) after its first progress."""
    if spec.name == SLOW_NAME:
        if progress is not None:
            progress(0.0, "counting stem, block 1")
        time.sleep(120)
    return analyze(spec, progress)
