"""The start-up page in the system Chromium: it waits, then reloads itself into the app across the hand-over.

No Gradio: the start-up page serves the port, then closes; for a moment nothing listens (the gap
while Gradio binds), then a plain server answers 200 in the app's place. The page must land on it
with its query string (a link's design) intact.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

from explorer.ui.browser_tools import free_port
from explorer.ui.startup_page import StartupPage

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.browser]


class _App(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f'<html><body><div id="the-app">{self.path}</div></body></html>'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


def test_the_page_reloads_into_the_app_across_the_gap(browser: Browser) -> None:
    port = free_port()
    page_server = StartupPage("127.0.0.1", port).start()
    app: ThreadingHTTPServer | None = None
    context = browser.new_context()
    try:
        pg = context.new_page()
        pg.goto(f"http://127.0.0.1:{port}/?design=abc&block=2:1", wait_until="domcontentloaded")
        assert "is starting" in pg.inner_text("#explorer-starting")
        pg.wait_for_timeout(1200)  # a few polls answered 503: it stays
        assert "is starting" in pg.inner_text("#explorer-starting")
        page_server.close()
        time.sleep(1.5)  # the gap: refused requests, the page keeps asking
        ThreadingHTTPServer.allow_reuse_address = True
        app = ThreadingHTTPServer(("127.0.0.1", port), _App)
        threading.Thread(target=app.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        pg.wait_for_selector("#the-app", timeout=10_000)
        assert pg.inner_text("#the-app") == "/?design=abc&block=2:1"  # the link's query survives the reload
    finally:
        context.close()
        page_server.close()
        if app is not None:
            app.shutdown()
            app.server_close()
