"""Client for the board agent (``explorer/latency/agent.py``): send a model, get its timing.

Every failure becomes a ``RemoteError`` whose message says what happened and what to check:
the board unreachable (refused, unknown host, time-out), a wrong token, a model over the
board's size limit, a refused setting, a board already busy.

Which boards a server may contact
---------------------------------
The UI's *Measure on board* makes the server open a connection to an address a browser names,
and its messages tell an open port from a closed one. So the UI contacts only the boards the
person running it allows (``allowed_board_url``): ``127.0.0.1:8765`` (an agent on the same
machine, or an SSH tunnel to a board) plus every ``HOST:PORT`` in ``$EXPLORER_BOARDS``
(comma-separated) and in ``explorer ui --board HOST:PORT``; an entry without a port allows
every port of that host. Any other address is refused with one message before any connection,
the same whether something listens there or not. Host names are compared as written, never
resolved. The command line (``explorer latency/calibrate --remote``) needs no list: the address
is the user's own choice on their own machine. Redirects are never followed.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode, urlparse

__all__ = ["BOARDS_ENV", "DEFAULT_BOARDS", "RemoteError", "allowed_board_url", "allowed_boards", "board_url",
           "check_board_allowed", "health", "measure_remote", "reach_board"]

#: the variable listing the boards the UI may contact (``HOST:PORT`` or ``HOST``, comma-separated)
BOARDS_ENV = "EXPLORER_BOARDS"
#: allowed without any setting: an agent on this machine (or an SSH tunnel to a board) on the default port
DEFAULT_BOARDS = ("127.0.0.1:8765",)


class RemoteError(ValueError):
    """The board could not measure; the message is for the user."""


def board_url(url_or_host: str, port: int | None = None) -> str:
    """``http://HOST:PORT`` from a URL or a host and port; ``ValueError`` when malformed."""
    text = (url_or_host or "").strip()
    if not text:
        raise RemoteError("no board address given; use http://HOST:PORT")
    if "://" not in text:
        text = f"http://{text}" + (f":{port}" if port and ":" not in text else "")
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise RemoteError(f"bad board address {url_or_host!r}; use http://HOST:PORT")
    try:
        _ = parsed.port
    except ValueError:
        raise RemoteError(f"bad port in {url_or_host!r}") from None
    return f"{parsed.scheme}://{parsed.netloc}"


def _host_port(url_or_entry: str) -> tuple[str, int | None]:
    """``(host, port)`` of ``http://HOST:PORT``, ``HOST:PORT`` or ``HOST`` (port ``None``); host lower-case."""
    text = url_or_entry.strip()
    parsed = urlparse(text if "://" in text else f"http://{text}")
    try:
        port = parsed.port
    except ValueError:
        raise RemoteError(f"bad port in {url_or_entry!r}; use HOST:PORT") from None
    if not parsed.hostname or parsed.path not in ("", "/") or parsed.username or parsed.query:
        raise RemoteError(f"bad board address {url_or_entry!r}; use HOST:PORT")
    return parsed.hostname.lower(), port


def allowed_boards(extra: Iterable[str] = (), env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The boards a server may contact: ``DEFAULT_BOARDS``, ``$EXPLORER_BOARDS`` and ``extra``.

    Each entry is ``HOST:PORT`` (or ``HOST`` for every port); a malformed entry raises
    ``RemoteError`` naming it and where it came from.
    """
    env = os.environ if env is None else env
    entries: list[str] = list(DEFAULT_BOARDS)
    for source, items in ((f"${BOARDS_ENV}", env.get(BOARDS_ENV, "").replace(",", " ").split()),
                          ("--board", [str(e).strip() for e in extra if str(e).strip()])):
        for item in items:
            try:
                _host_port(item)
            except RemoteError as exc:
                raise RemoteError(f"{source}: {exc}") from None
            entries.append(item)
    return tuple(dict.fromkeys(entries))


def check_board_allowed(url: str, allowed: Iterable[str]) -> str:
    """``url`` as ``http://HOST:PORT`` if its host and port are in ``allowed``; else ``RemoteError``.

    Pure: decides from the text alone (no look-up, no connection), so the refusal is the same
    whether anything listens at the address or not. A URL without a port means 80 (https: 443).
    """
    base = board_url(url)
    host, port = _host_port(base)
    port = port if port is not None else (443 if base.startswith("https:") else 80)
    for entry in allowed:
        entry_host, entry_port = _host_port(entry)
        if entry_host == host and entry_port in (None, port):
            return base
    shown = f"[{host}]" if ":" in host else host
    raise RemoteError(f"board {shown}:{port} is not one of the boards this server may contact; whoever runs it "
                      f"can allow it with `explorer ui --board {shown}:{port}` or ${BOARDS_ENV}")


def allowed_board_url(url_or_host: str, port: int | None = None, allowed: Iterable[str] | None = None) -> str:
    """``board_url`` then ``check_board_allowed`` (``allowed`` defaults to ``allowed_boards()``): the UI's path."""
    return check_board_allowed(board_url(url_or_host, port), allowed_boards() if allowed is None else allowed)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A board answers itself; a redirect (to an address nobody allowed) is an error, not followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _request(request: urllib.request.Request, base: str, timeout: float) -> dict[str, Any]:
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return json.loads(response.read().decode())
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read().decode()).get("error", exc.reason)
        except (ValueError, OSError, AttributeError):  # not the agent's JSON: the HTTP reason
            reason = exc.reason
        hints = {401: "check --token", 413: "the model is over the board's limit (--max-mb on the agent)",
                 503: "the board is measuring another model; retry shortly"}
        hint = f" ({hints[exc.code]})" if exc.code in hints else ""
        raise RemoteError(f"board at {base} refused: {exc.code} {reason}{hint}") from None
    except TimeoutError:
        raise RemoteError(f"board at {base} did not answer within {timeout:.0f} s") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise RemoteError(f"board at {base} did not answer within {timeout:.0f} s") from None
        raise RemoteError(f"board at {base} is unreachable: {reason}; is the agent running "
                          f"(explorer agent / python3 agent.py) and the port open?") from None
    except (ConnectionError, OSError) as exc:
        raise RemoteError(f"connection to the board at {base} failed: {exc}") from None
    except json.JSONDecodeError:
        raise RemoteError(f"board at {base} sent a reply that is not JSON; is it the explorer agent?") from None


def health(url: str, token: str, timeout: float = 5.0) -> dict[str, Any]:
    """The agent's ``/health``: device facts, size limit, whether it is busy."""
    base = board_url(url)
    req = urllib.request.Request(f"{base}/health", headers={"Authorization": f"Bearer {token}"})  # noqa: S310 (http/https only)
    return _request(req, base, timeout)


def reach_board(host: str, port: int | None, token: str, timeout: float = 5.0) -> str:
    """The UI's way to a board: a token is required, the address must be one the person running the
    server allows (``allowed_board_url``, decided before any connection), and the agent must answer
    ``/health``. Returns its ``http://HOST:PORT``; ``ValueError`` (``RemoteError`` is one) otherwise."""
    if not token:
        raise ValueError("enter the agent's token (the --token it was started with)")
    url = allowed_board_url(str(host or "").strip(), port or 8765)
    health(url, token, timeout=timeout)
    return url


def measure_remote(url: str, token: str, model: bytes, runs: int = 50, warmup: int = 10, threads: int = 1,
                   timeout: float = 300.0) -> dict[str, Any]:
    """POST ``model`` (ONNX bytes) to the agent and return its JSON timing and device facts."""
    base = board_url(url)
    query = urlencode({"runs": runs, "warmup": warmup, "threads": threads})
    req = urllib.request.Request(f"{base}/measure?{query}", data=model, method="POST", headers={  # noqa: S310
        "Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream",
        "Content-Length": str(len(model))})
    try:
        return _request(req, base, timeout)
    except RemoteError as exc:
        if "refused:" in str(exc) or "did not answer" in str(exc):
            raise
        # the agent refuses an oversized model before reading it, which the sender sees as a
        # broken pipe: ask the board why (its size limit), or fail with the original error
        try:
            facts = health(base, token, timeout=min(timeout, 10.0))
        except RemoteError:
            raise exc from None
        if len(model) > facts.get("max_bytes", len(model)):
            raise RemoteError(f"board at {base} refused: 413 model of {len(model)} bytes is over its limit of "
                              f"{facts['max_bytes']} bytes (--max-mb on the agent)") from None
        raise
