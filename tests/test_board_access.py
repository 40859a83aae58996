"""Which boards the server may contact (issue 10): the allow-list is pure text, decided before any
connection; the UI's ``--board`` feeds it; redirects from a board are not followed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from explorer.cli import main
from explorer.latency.client import (
    BOARDS_ENV,
    DEFAULT_BOARDS,
    RemoteError,
    allowed_board_url,
    allowed_boards,
    check_board_allowed,
    health,
)


def test_default_and_configured_boards() -> None:
    assert allowed_boards(env={}) == DEFAULT_BOARDS == ("127.0.0.1:8765",)
    assert allowed_boards(["pi.local:8765"], env={BOARDS_ENV: "10.0.0.5:9000, [::1]:8765,10.0.0.5:9000"}) == (
        "127.0.0.1:8765", "10.0.0.5:9000", "[::1]:8765", "pi.local:8765")
    with pytest.raises(RemoteError, match=r"\$EXPLORER_BOARDS: bad port in 'pi:http'"):
        allowed_boards(env={BOARDS_ENV: "pi:http"})
    with pytest.raises(RemoteError, match="--board: bad board address 'http://pi/admin'"):
        allowed_boards(["http://pi/admin"], env={})


@pytest.mark.parametrize("url,allowed", [
    ("http://127.0.0.1:8765", True), ("127.0.0.1:8765", True), ("http://PI.local:8765", True),
    ("http://pi.local:8766", False), ("http://127.0.0.1:22", False), ("http://localhost:8765", False),
    ("http://127.0.0.2:8765", False), ("http://2130706433:8765", False), ("http://10.0.0.7:1234", True),
    ("http://10.0.0.7", True), ("http://[::1]:8765", True), ("http://[::1]:80", False),
    ("http://user@127.0.0.1:22", False),
])
def test_check_board_allowed(url: str, allowed: bool) -> None:
    boards = ("127.0.0.1:8765", "pi.local:8765", "10.0.0.7", "[::1]:8765")
    if allowed:
        assert check_board_allowed(url, boards).startswith("http")
    else:
        with pytest.raises(RemoteError):
            check_board_allowed(url, boards)


def test_the_refusal_names_the_fix_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BOARDS_ENV, "secret-board.lan:8765")
    with pytest.raises(RemoteError) as caught:
        allowed_board_url("10.1.2.3", 22)
    text = str(caught.value)
    assert text == ("board 10.1.2.3:22 is not one of the boards this server may contact; whoever runs it can "
                    "allow it with `explorer ui --board 10.1.2.3:22` or $EXPLORER_BOARDS")
    assert "secret-board" not in text  # the allowed list is not shown to whoever asks
    assert allowed_board_url("secret-board.lan", 8765) == "http://secret-board.lan:8765"


class _Redirect(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        _Redirect.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", "http://127.0.0.1:9/elsewhere" if self.path == "/health" else "/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def redirecting() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirect_is_not_followed(redirecting: str) -> None:
    _Redirect.hits.clear()
    with pytest.raises(RemoteError, match="refused: 302"):
        health(redirecting, "t", timeout=5)
    assert _Redirect.hits == ["/health"]


def test_ui_board_option_feeds_the_allow_list(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import explorer.ui.app as app

    seen: list[tuple[str, ...]] = []
    monkeypatch.setattr(app, "launch", lambda host, port, **_: seen.append(allowed_boards()))
    monkeypatch.setenv(BOARDS_ENV, "10.0.0.5:9000")
    assert main(["ui", "--board", "pi.local:8765", "--board", "192.168.1.20:8765"]) == 0
    assert seen == [("127.0.0.1:8765", "10.0.0.5:9000", "pi.local:8765", "192.168.1.20:8765")]
    assert main(["ui", "--board", "pi.local:eighty"]) == 2
    assert "error: --board: bad port in 'pi.local:eighty'" in capsys.readouterr().err
