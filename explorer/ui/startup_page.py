"""While ``explorer ui`` starts: an answer on its port at once, then the port handed to Gradio.

Importing Gradio and PyTorch alone takes seconds (5–6 s for Gradio on a quiet 2-core machine), so
the app itself cannot answer within a few seconds of ``explorer ui``. ``StartupPage(host, port)``
binds the port first, with the standard library only (nothing here imports Gradio or torch), and
answers every request with ``503 Service Unavailable``, ``Retry-After: 1`` and a small page
saying the explorer is starting. That page's script asks the same address again every 400 ms
(``fetch``, never cached) and reloads itself, query string and all (a link's design survives),
once the answer is a ``200``: Gradio's page. A refused request (the moment between ``close``
and Gradio binding the port) is simply asked again, so the hand-over has no gap a browser sees.

``close()`` stops answering and frees the port (``explorer.ui.app.launch`` calls it right before
Gradio binds); it is idempotent. Clients that wait for the app (tests, benchmarks) wait for a
``200``: the start-up page never gives one.
"""

from __future__ import annotations

import errno
import html
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["STARTING_HEADER", "StartupPage", "startup_html"]

#: a header only the start-up page sends (``benchmarks/ui_latency.py`` tells the two answers apart by it)
STARTING_HEADER = "X-Explorer-Starting"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AttendNeXt Explorer is starting…</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<noscript><meta http-equiv="refresh" content="3"></noscript>
<style>
body {{font-family: system-ui, sans-serif; margin: 0; min-height: 100vh; display: flex; align-items: center;
       justify-content: center; background: #f8fafc; color: #111827;}}
.box {{max-width: 520px; padding: 28px 32px; border: 1px solid #e5e7eb; border-radius: 12px; background: #fff;}}
h1 {{font-size: 20px; margin: 0 0 8px;}} p {{margin: 6px 0; line-height: 1.45; color: #374151;}}
.bar {{height: 4px; background: #e5e7eb; border-radius: 2px; overflow: hidden; margin-top: 14px;}}
.bar div {{height: 100%; width: 30%; background: #4f46e5; animation: slide 1.2s ease-in-out infinite;}}
@keyframes slide {{0% {{margin-left: -30%;}} 100% {{margin-left: 100%;}}}}
#waited {{font-variant-numeric: tabular-nums; color: #6b7280; font-size: 13px;}}
</style></head>
<body><div class="box" id="explorer-starting">
<h1>AttendNeXt Explorer is starting…</h1>
<p>{detail}</p>
<p>This page opens the explorer by itself as soon as it is ready; nothing to do.</p>
<p id="waited"></p>
<div class="bar"><div></div></div>
</div>
<script>
(() => {{
  const t0 = Date.now();
  const waited = document.getElementById('waited');
  async function poll() {{
    waited.textContent = 'waiting ' + Math.round((Date.now() - t0) / 1000) + ' s';
    try {{
      const r = await fetch(location.href, {{cache: 'no-store', headers: {{'Accept': 'text/html'}}}});
      if (r.status === 200 && !r.headers.get('{header}')) {{ location.reload(); return; }}
    }} catch (e) {{ /* the port is being handed over: ask again */ }}
    setTimeout(poll, 400);
  }}
  setTimeout(poll, 400);
}})();
</script></body></html>
"""


def startup_html(detail: str = "Loading Gradio and PyTorch and building the page (a few seconds).") -> str:
    """The start-up page (``detail`` is escaped)."""
    return _PAGE.format(detail=html.escape(detail), header=STARTING_HEADER)


class _Handler(BaseHTTPRequestHandler):
    body = b""
    timeout = 5.0  # seconds a client may take to send its request: one that sends nothing is dropped

    def _answer(self, with_body: bool) -> None:
        self.send_response(503, "Starting")
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Retry-After", "1")
        self.send_header(STARTING_HEADER, "1")
        self.send_header("Connection", "close")
        self.end_headers()
        if with_body:
            self.wfile.write(self.body)

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)

    def do_POST(self) -> None:  # a request the app would take: not yet
        self._answer(True)

    def log_message(self, format: str, *args: object) -> None:  # quiet: the app logs its own start
        return


class StartupPage:
    """The start-up page on ``host:port`` until ``close()`` (``start()`` binds; a taken port: ``ValueError``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 7860) -> None:
        self.host, self.port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> StartupPage:
        try:
            family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0][0]
        except socket.gaierror:
            raise ValueError(f"--host {self.host!r} is not an address of this machine; use 127.0.0.1 or "
                             "another address of this machine") from None
        server_class = type("StartupServer", (ThreadingHTTPServer,), {"address_family": family,
                                                                       "daemon_threads": True})
        handler = type("StartupHandler", (_Handler,), {"body": startup_html().encode()})
        try:
            self._server = server_class((self.host, self.port), handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ValueError(f"port {self.port} on {self.host} is taken (another explorer?); stop that one "
                                 "or pick another with --port") from None
            raise ValueError(f"cannot serve on {self.host}:{self.port} ({exc.strerror}); pick another --port or "
                             "--host") from None
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="explorer-startup-page", daemon=True)
        self._thread.start()
        return self

    @property
    def serving(self) -> bool:
        return self._server is not None

    def close(self) -> None:
        """Stop answering and free the port (at once: no request is waited for; idempotent)."""
        with self._lock:
            server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StartupPage:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
