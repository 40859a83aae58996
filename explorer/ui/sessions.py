"""One edit at a time per browser session, each starting from that session's last edit.

Gradio's queue bounds concurrency per group of events, not per session. With one slot for
every edit of every session, one slow edit stalled all of them; with several slots, two edits
of one session (two buttons clicked in quick succession) could run at once, both starting
from the same design (Gradio reads a ``gr.State`` before the handler runs), and the later
answer would silently drop the earlier edit. ``SessionGate`` keeps the slots shared but runs
a session's edits one at a time, in arrival order, and hands each the state values (design,
undo history, draft) that the session's previous edit returned, not the ones Gradio read
before that edit finished. A session may have ``max_in_flight`` edits running or waiting; one
more is answered at once with ``BUSY_MESSAGE`` (so one session cannot take every slot).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .render import render_error
from .worker import session_affinity

__all__ = ["BUSY_MESSAGE", "MAX_IN_FLIGHT", "SessionGate"]

#: edits of one session running or waiting at once
MAX_IN_FLIGHT = 2
BUSY_MESSAGE = "still applying your previous edits; wait until they show, then try again"


@dataclass
class _Session:
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    latest: dict[str, Any] = field(default_factory=dict)  # state name -> what the last edit returned


class SessionGate:
    """Serialises each session's edits; remembers the state values of the last ``max_sessions`` sessions."""

    def __init__(self, max_in_flight: int = MAX_IN_FLIGHT, max_sessions: int = 512) -> None:
        self.max_in_flight = max_in_flight
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def _enter(self, key: str) -> _Session | None:
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = _Session()
                idle = [k for k, s in self._sessions.items() if s.in_flight == 0 and k != key]
                for old in idle[: max(0, len(self._sessions) - self.max_sessions)]:
                    del self._sessions[old]
            self._sessions.move_to_end(key)
            if session.in_flight >= self.max_in_flight:
                return None
            session.in_flight += 1
            return session

    def _leave(self, session: _Session) -> None:
        with self._lock:
            session.in_flight -= 1

    def run(self, key: str, fn: Callable[..., dict[str, Any]], args: Sequence[Any],
            slots: Mapping[str, int], **kwargs: Any) -> dict[str, Any]:
        """``fn(*args, **kwargs)`` after the session's earlier edits, with its state arguments brought up to date.

        ``slots`` maps a state's output name (``spec_yaml``, ``history``, ``draft``) to its
        position in ``args``; ``fn`` returns ``{output name: value}``, and the states among
        its outputs become the next edit's arguments.
        """
        session = self._enter(key)
        if session is None:
            return render_error([BUSY_MESSAGE])
        try:
            with session.lock:
                values = list(args)
                for name, index in slots.items():
                    if name in session.latest:
                        values[index] = session.latest[name]
                with session_affinity(key):
                    result = fn(*values, **kwargs)
                for name in slots:
                    if name in result:
                        session.latest[name] = result[name]
                return result
        finally:
            self._leave(session)

    def forget(self, key: str) -> None:
        """Drop a closed session's remembered state (its page was closed)."""
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and session.in_flight == 0:
                del self._sessions[key]
