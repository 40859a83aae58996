"""Client for the board agent (``explorer/latency/agent.py``): send a model, get its timing.

Every failure becomes a ``RemoteError`` whose message says what happened and what to check:
the board unreachable (refused, unknown host, time-out), a wrong token, a model over the
board's size limit, a refused setting, a board already busy.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlparse

__all__ = ["RemoteError", "board_url", "health", "measure_remote"]


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
        parsed.port
    except ValueError:
        raise RemoteError(f"bad port in {url_or_host!r}") from None
    return f"{parsed.scheme}://{parsed.netloc}"


def _request(request: urllib.request.Request, base: str, timeout: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode())
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read().decode()).get("error", exc.reason)
        except Exception:
            reason = exc.reason
        hints = {401: "check --token", 413: "the model is over the board's limit (--max-mb on the agent)",
                 503: "the board is measuring another model; retry shortly"}
        hint = f" ({hints[exc.code]})" if exc.code in hints else ""
        raise RemoteError(f"board at {base} refused: {exc.code} {reason}{hint}") from None
    except (socket.timeout, TimeoutError):
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
    req = urllib.request.Request(f"{base}/health", headers={"Authorization": f"Bearer {token}"})
    return _request(req, base, timeout)


def measure_remote(url: str, token: str, model: bytes, runs: int = 50, warmup: int = 10, threads: int = 1,
                   timeout: float = 300.0) -> dict[str, Any]:
    """POST ``model`` (ONNX bytes) to the agent and return its JSON timing and device facts."""
    base = board_url(url)
    query = urlencode({"runs": runs, "warmup": warmup, "threads": threads})
    req = urllib.request.Request(f"{base}/measure?{query}", data=model, method="POST", headers={
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
