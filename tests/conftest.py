"""Shared test set-up: deterministic, single-threaded torch (the CI machine has 2 cores).

Tests over about 5 s carry ``@pytest.mark.slow`` so that ``make test-fast`` (``-m "not slow"``)
skips them; every browser test is slow by nature (a server and Chromium start), so it is marked
here rather than one by one.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def pytest_configure(config: pytest.Config) -> None:
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.slow)
