"""The Search tab's third latency source: measured on the board through its agent, under the Latency tab's
allowed-board rules (only addresses the person running the server allows), with one-line refusals when no
board is configured, allowed or reachable. The board is the real agent on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_latency_ui import TOKEN, board  # noqa: F401 - the agent fixture, shared with the Latency tab's tests
from test_search_ui import TINY, form, poll_to_end

from explorer.search.view import stored_view
from explorer.store import Store
from explorer.ui import search_callbacks as sc
from explorer.ui import search_runner as runner


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "s.sqlite") as s:
        yield s


@pytest.fixture()
def session(request: pytest.FixtureRequest) -> Iterator[str]:
    key = f"test-{request.node.name}-{time.monotonic_ns()}"
    yield key
    runner.stop(key)
    runner.wait(key, 120)


def board_form(host: str, port: Any, token: str = TOKEN, **changes: Any) -> list[Any]:
    values = form(budget=2, objectives=("latency", "params"), latency_source="remote", **changes)
    return [*values, host, port, token]


def refused(out: dict[str, Any]) -> str:
    assert out["polling"] is False and "Search not started" in out["progress"]
    text = out["progress"].replace("&#x27;", "'")
    assert "Traceback" not in text
    return text


def test_a_search_measures_latency_on_the_allowed_board(board: tuple[str, int], store: Store, session: str,  # noqa: F811
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    host, port = board
    monkeypatch.setenv("EXPLORER_BOARDS", f"{host}:{port}")  # the person running the server allows it
    settings = sc.parse_settings(*board_form(host, port))
    assert settings.latency.mode == "remote" and settings.latency.url == f"http://{host}:{port}"
    out = sc.on_start_search(TINY, *board_form(host, port), session=session, store=store)
    assert out["polling"] is True, out["progress"]
    poll_to_end(session, store)
    job = runner.current(session)
    assert job is not None and job.error is None and job.search_id is not None
    row = store.get_search(job.search_id)
    assert row["config"]["latency"]["mode"] == "remote" and "token" not in row["config"]["latency"]
    view = stored_view(store, job.search_id)
    assert len(view.candidates) >= 2 and all(c.latency_ms is not None and c.latency_ms > 0 for c in view.candidates)
    timed = store.list_latency()  # every measurement is cached in the store, by the board's address
    assert timed and all(row["device"] == f"http://{host}:{port}" for row in timed)


def test_no_board_configured_is_one_line(store: Store, session: str) -> None:
    text = refused(sc.on_start_search(TINY, *board_form("", 8765), session=session, store=store))
    assert "no board configured" in text


def test_a_board_nobody_allowed_is_refused_before_any_connection(store: Store, session: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXPLORER_BOARDS", raising=False)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        listening.setblocking(False)
        port = listening.getsockname()[1]
        text = refused(sc.on_start_search(TINY, *board_form("127.0.0.1", port), session=session, store=store))
        with pytest.raises(BlockingIOError):
            listening.accept()  # nobody connected
    assert "not one of the boards this server may contact" in text
    assert "not one of the boards" in refused(
        sc.on_start_search(TINY, *board_form("169.254.169.254", 8765), session=session, store=store))


def test_an_allowed_board_that_does_not_answer_or_a_wrong_token_is_one_line(
        board: tuple[str, int], store: Store, session: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = int(s.getsockname()[1])  # nothing listens there once the socket closes
    host, port = board
    monkeypatch.setenv("EXPLORER_BOARDS", f"127.0.0.1:{closed}, {host}:{port}")
    start = time.monotonic()
    text = refused(sc.on_start_search(TINY, *board_form("127.0.0.1", closed), session=session, store=store))
    assert "latency on the board" in text and "unreachable" in text and time.monotonic() - start < 10
    text = refused(sc.on_start_search(TINY, *board_form(host, port, token="wrong"), session=session, store=store))
    assert "401" in text
    text = refused(sc.on_start_search(TINY, *board_form(host, port, token=""), session=session, store=store))
    assert "enter the agent's token" in text


def test_a_search_without_latency_never_asks_the_board(store: Store, session: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPLORER_BOARDS", "127.0.0.1:9")
    values = form(budget=1, objectives=("accuracy", "params"), latency_source="remote")
    settings = sc.parse_settings(*[*values, "127.0.0.1", 9, "t"])
    sc.check_board(settings)  # no latency objective, no latency budget: nothing contacted, nothing refused
