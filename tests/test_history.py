"""Undo / redo: an immutable stack of YAML texts."""

from __future__ import annotations

import pytest

from explorer.history import History


def test_push_undo_redo_walks_the_stack() -> None:
    h0 = History.start("a", "start")
    h1 = h0.push("b", "edit 1").push("c", "edit 2")
    assert h1.text == "c" and [e.text for e in h1.past] == ["a", "b"] and h1.can_undo and not h1.can_redo
    assert h1.undo_label == "edit 2"
    u = h1.undo()
    assert u.text == "b" and [e.text for e in u.future] == ["c"] and u.redo_label == "edit 2"
    assert u.undo().text == "a" and not u.undo().can_undo
    assert u.redo().text == "c"
    assert u.undo().redo().redo().text == "c"
    assert len(h1) == 3
    assert h0.text == "a" and not h0.can_undo  # the original is untouched


def test_push_after_undo_drops_the_future() -> None:
    h = History.start("a").push("b").push("c").undo().undo()
    h2 = h.push("x", "branch")
    assert h2.text == "x" and not h2.can_redo and [e.text for e in h2.past] == ["a"]


def test_pushing_the_present_changes_nothing() -> None:
    h = History.start("a").push("b")
    assert h.push("b", "again") is h


def test_nothing_to_undo_or_redo_is_a_no_op() -> None:
    h = History.start("a")
    assert h.undo() is h and h.redo() is h and h.undo_label == "" and h.redo_label == ""


def test_limit_keeps_the_latest_steps() -> None:
    h = History.start("0", limit=3)
    for i in range(1, 10):
        h = h.push(str(i))
    assert [e.text for e in h.past] == ["6", "7", "8"] and h.text == "9"
    with pytest.raises(ValueError, match="limit"):
        History.start("a", limit=0)
