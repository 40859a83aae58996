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

``SessionGate.unchanged_skipped`` trims what an edit's redraw sends to what the session's page
does not show yet. Gradio rebuilds a component for every ``gr.update(...)`` it sends (about 2 ms
each on this machine; an edit's form alone is 33 of them); most of an edit's updates repeat the
properties (label, visibility, choices) that the page already has. An update whose properties
were all sent to this session before is sent as its bare value (or skipped, for a component
that stays hidden); a view that only the server writes (``SERVER_VIEWS``: charts, table, form
title) is skipped when it is the very value sent before. Values of fields a person can edit
(the form, the editor, the picker) are always sent, as they were: an edit resets them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from .render import render_error, resolved
from .worker import session_affinity

__all__ = ["BUSY_MESSAGE", "MAX_IN_FLIGHT", "SERVER_VIEWS", "SessionGate"]

#: edits of one session running or waiting at once
MAX_IN_FLIGHT = 2
BUSY_MESSAGE = "still applying your previous edits; wait until they show, then try again"
#: outputs only the server writes (nobody types into them): skipped when they would show the same value again
SERVER_VIEWS = frozenset({"table", "bars", "scatter", "diagram", "form_title"})


@dataclass
class _Session:
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    latest: dict[str, Any] = field(default_factory=dict)  # state name -> what the last edit returned
    shown_lock: threading.Lock = field(default_factory=threading.Lock)
    props: dict[str, dict[str, Any]] = field(default_factory=dict)  # output -> the properties its page has
    views: dict[str, Any] = field(default_factory=dict)  # server-written output -> the value its page has


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

    def unchanged_skipped(self, key: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` (output name -> value or ``gr.update``) less what session ``key``'s page already shows.

        A ``gr.update`` whose properties (all but ``value``) this session's page got before
        becomes its bare value, or ``gr.skip()`` when it has none or its component stays
        hidden (a hidden field's value is set again when it is shown); a ``SERVER_VIEWS``
        value equal to (or, for a chart, the very object) sent before becomes ``gr.skip()``.
        Everything else is returned as it is, and remembered as sent.
        """
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = _Session()
        out: dict[str, Any] = {}
        with session.shown_lock:
            for name, drawn in values.items():
                value = resolved(drawn)  # a chart or table drawn now, as it is sent (``render.Later``)
                if _is_update(value):
                    props = {k: v for k, v in value.items() if k not in ("value", "__type__")}
                    known = session.props.get(name)
                    if known is not None and all(k in known and _same(known[k], v) for k, v in props.items()):
                        hidden = known.get("visible") is False
                        out[name] = value["value"] if "value" in value and not hidden else gr.skip()
                        continue
                    session.props[name] = {**(known or {}), **props}
                    session.views.pop(name, None)
                elif name in SERVER_VIEWS and name in session.views and _same(session.views[name], value):
                    out[name] = gr.skip()
                    continue
                elif name in SERVER_VIEWS:
                    session.views[name] = value
                out[name] = value
        return out

    def forget(self, key: str) -> None:
        """Drop a closed session's remembered state (its page was closed)."""
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and session.in_flight == 0:
                del self._sessions[key]


def _is_update(value: Any) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update"


def _same(a: Any, b: Any) -> bool:
    """Equal plain data (text, numbers, lists, tuples); any other object only if it is the same one."""
    if a is b:
        return True
    if isinstance(a, (str, int, float, bool, list, tuple, type(None))) and type(a) is type(b):
        try:
            return bool(a == b)
        except Exception:  # noqa: BLE001 - not comparable: not the same
            return False
    return False
