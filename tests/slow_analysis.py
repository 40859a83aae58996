"""A stand-in for a huge count, for the tests of the UI's analysis workers (``tests/test_ui_worker.py``).

It lives in its own small module because a worker process imports it by name: the test
module itself would bring Gradio along and slow every worker's start.
"""

from __future__ import annotations

import time

from explorer.analysis import Analysis, Progress, analyze, count_unit_reference
from explorer.spec import ArchitectureSpec, expand_units

#: the design name the slow target hangs on
SLOW_NAME = "sleepy"
#: the design name the hungry target counts on real tensors
HUNGRY_NAME = "hungry"


def sleepy_analyze(spec: ArchitectureSpec, progress: Progress | None = None) -> Analysis:
    """``analyze``, but a design named ``sleepy`` hangs (as a huge count would) after its first progress."""
    if spec.name == SLOW_NAME:
        if progress is not None:
            progress(0.0, "counting stem, block 1")
        time.sleep(120)
    return analyze(spec, progress)


def hungry_analyze(spec: ArchitectureSpec, progress: Progress | None = None) -> Analysis:
    """``analyze``, but a design named ``hungry`` counts its first unit on real tensors first.

    The analysis counts new units on the meta device, which allocates nothing; a unit with an op
    the meta counter does not know falls back to fvcore on real tensors (``count_unit_reference``),
    which allocates the unit's activations. This target takes that path for the first unit, so a
    huge unit needs its memory as such a fallback would.
    """
    if spec.name == HUNGRY_NAME:
        unit = expand_units(spec)[0]
        shape = (1, spec.input.channels, spec.input.size, spec.input.size)
        count_unit_reference(unit.config.model_dump_json(), shape, spec.num_classes)
    return analyze(spec, progress)
