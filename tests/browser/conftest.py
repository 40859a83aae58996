"""Real-browser fixtures: the system Chromium (headless, through Playwright) and a live explorer.

The server is ``explorer ui`` in a child process on a free 127.0.0.1 port, started once per
session; every test gets a fresh page (a fresh Gradio session). Every wait is bounded.

Without Chromium on PATH (or without the playwright package) these tests are skipped with the
reason shown, except when ``REQUIRE_BROWSER=1`` (as in CI), where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from explorer.ui.browser_tools import find_chromium, free_port, serve_subprocess, stop_process

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run",
    "--disable-component-update", "--disable-sync",
]
WAIT_MS = 20_000  # the longest any single step may take on a loaded 2-core machine


def _missing(reason: str) -> None:
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        _missing("no Chromium found on PATH (install the system 'chromium' package)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the playwright Python package is not installed (pip install -e '.[dev]')")
    return path  # type: ignore[return-value]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``explorer ui`` on a free 127.0.0.1 port with a temporary store; its URL (the API tests need no browser)."""
    port = free_port()
    folder = tmp_path_factory.mktemp("server")
    log = folder / "explorer-ui.log"
    proc = serve_subprocess(port, log=log, timeout_s=180, db=folder / "explorer.sqlite")
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_process(proc, timeout_s=15)


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def page(browser: Browser, server: str, tmp_path: Path) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    pg = context.new_page()
    pg.goto(server, wait_until="domcontentloaded")
    pg.wait_for_selector("#metric-params .value")
    try:
        yield pg
        pg.wait_for_timeout(300)  # a failing chained step reports just after the numbers show
        toasts = pg.locator('[data-testid="toast-body"]').all_inner_texts()
        assert not toasts, f"Gradio showed an error: {toasts}"
    finally:
        context.close()
