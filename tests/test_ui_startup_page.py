"""``explorer ui`` answers at once: the start-up page on the port, handed to the app once it is ready.

Stdlib servers only (no Gradio): the page answers every request with 503 and its header, frees the
port on ``close`` so another server binds it at once, and refuses a taken port in one line; the
CLI starts it before Gradio is imported. The browser side (the page reloads itself into the app,
across the hand-over) is ``tests/browser/test_startup_page_browser.py``.
"""

from __future__ import annotations

import http.client
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from explorer.ui.browser_tools import free_port
from explorer.ui.startup_page import STARTING_HEADER, StartupPage, startup_html


def _get(port: int, method: str = "GET", path: str = "/?design=abc") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_the_page_answers_at_once_and_never_with_a_200() -> None:
    port = free_port()
    t0 = time.perf_counter()
    with StartupPage("127.0.0.1", port) as page:
        status, headers, body = _get(port)
        assert time.perf_counter() - t0 < 2.0  # no import, no build: it answers at once
        assert page.serving
        assert status == 503 and headers[STARTING_HEADER.lower()] == "1" and headers["retry-after"] == "1"
        assert headers["cache-control"] == "no-store" and "text/html" in headers["content-type"]
        assert b"AttendNeXt Explorer is starting" in body and b"location.reload()" in body
        head = _get(port, "HEAD", "/config")
        assert head[0] == 503 and head[2] == b""
        assert _get(port, "POST", "/gradio_api/queue/join")[0] == 503
    assert not page.serving


def test_close_hands_the_port_over_at_once() -> None:
    port = free_port()
    page = StartupPage("127.0.0.1", port).start()
    assert _get(port)[0] == 503  # a request has been served (its connection is closed by now)
    page.close()
    page.close()  # idempotent

    class App(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            return

    HTTPServer.allow_reuse_address = True  # as Gradio (uvicorn) binds
    with HTTPServer(("127.0.0.1", port), App) as app:  # the port is free right after close
        app.timeout = 5
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/")
        app.handle_request()
        r = conn.getresponse()
        assert r.status == 200 and STARTING_HEADER.lower() not in {k.lower() for k, _ in r.getheaders()}
        conn.close()


def test_a_taken_port_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"^port {port} on 127.0.0.1 is taken .*--port$"):
            StartupPage("127.0.0.1", port).start()
    with pytest.raises(ValueError, match="is not an address of this machine"):
        StartupPage("no.such.host.invalid", free_port()).start()


def test_the_page_escapes_what_it_says() -> None:
    assert "&lt;b&gt;" in startup_html("<b>") and "<b>" not in startup_html("<b>").split("<body>")[1].split("<p>")[1]


def test_the_cli_serves_the_page_before_gradio_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    """``explorer ui``: the page answers before ``explorer.ui.app`` (and Gradio) is imported; it is closed
    right before the app binds, and closed when the start fails."""
    from explorer.cli import main

    port = free_port()
    seen: dict[str, object] = {}

    class FakeApp:  # stands for explorer.ui.app: records what the port answered while it "built the app"
        @staticmethod
        def launch(host: str, port: int, before_serving: object) -> None:
            seen["while starting"] = _get(port)[0]
            seen["gradio imported"] = "gradio" in sys.modules and "gradio" not in seen.get("preloaded", ())
            before_serving()  # type: ignore[operator]
            with socket.socket() as s:  # the app binds the freed port
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, port))
            raise RuntimeError("stop here")

    seen["preloaded"] = tuple(m for m in ("gradio",) if m in sys.modules)
    monkeypatch.setitem(sys.modules, "explorer.ui.app", FakeApp)
    with pytest.raises(RuntimeError, match="stop here"):
        main(["ui", "--port", str(port)])
    assert seen["while starting"] == 503 and seen["gradio imported"] is False
    with pytest.raises(ConnectionRefusedError):  # and the page is gone once the command ends, however it ended
        _get(port)


def test_a_client_that_sends_nothing_is_dropped_and_others_still_get_the_page() -> None:
    port = free_port()
    with StartupPage("127.0.0.1", port), socket.create_connection(("127.0.0.1", port), timeout=15) as silent:
        assert _get(port)[0] == 503  # answered while the silent client holds its connection
        t0 = time.perf_counter()
        assert silent.recv(1) == b""  # the page closes it after its request time-out
        assert time.perf_counter() - t0 < 10.0
