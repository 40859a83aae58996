"""Take the README's screenshot of the explorer: ``python -m explorer.ui.screenshot [OUT.png]``.

Serves ``explorer ui`` on a free 127.0.0.1 port, opens it in the system Chromium (headless,
through Playwright, a dev dependency), applies one mutation so the numbers bar shows its
changes, and saves the page at 1400 px wide. Default output: ``assets/screenshots/explorer.png``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ..presets import assets_dir
from .browser_tools import find_chromium, free_port, serve_subprocess

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def take_screenshot(out: Path, width: int = 1400, height: int = 1500, mutation: str = "wider") -> Path:
    """Save a PNG of the explorer after one ``mutation`` of AttendNeXt; returns ``out``."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium on PATH: install the system 'chromium' package")
    port = free_port()
    proc = serve_subprocess(port, log=Path(tempfile.mkdtemp()) / "ui.log")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            page.wait_for_selector("#metric-params .value", timeout=60_000)
            before = page.get_attribute("#metric-params", "data-value")
            page.click(f"#mut-{mutation}")
            page.wait_for_function(
                "old => document.querySelector('#metric-params').dataset.value !== old", arg=before, timeout=30_000)
            page.wait_for_timeout(1500)  # let the chained chart redraw finish
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=False)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=assets_dir() / "screenshots" / "explorer.png")
    args = parser.parse_args()
    print(take_screenshot(args.out))


if __name__ == "__main__":
    main()
