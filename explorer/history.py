"""Undo / redo of designs: an immutable stack of YAML texts.

``History`` holds the present design, the designs before it (``past``, oldest first) and the
designs undone since (``future``, next first), each with a short label saying which edit made
it. Every operation returns a new ``History``; nothing is modified in place, so a UI can keep
one in its session state and a test can check every step.

    h = History.start(yaml_a, "preset attendnext")
    h = h.push(yaml_b, "Wider at stage 2")      # past = [a], present = b
    h = h.undo()                                # present = a, future = [b]
    h = h.redo()                                # present = b again

Pushing the text that is already present changes nothing (so re-validating the same design,
or an editor echoing the app's own update, never adds a step); pushing after an undo drops the
undone future, as in every editor. At most ``limit`` past steps are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["DEFAULT_LIMIT", "History", "HistoryEntry"]

DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class HistoryEntry:
    """One design in the history: its YAML and the edit that produced it."""

    text: str
    label: str = ""


@dataclass(frozen=True)
class History:
    """Past, present and undone designs (immutable)."""

    present: HistoryEntry
    past: tuple[HistoryEntry, ...] = ()
    future: tuple[HistoryEntry, ...] = ()
    limit: int = DEFAULT_LIMIT

    @classmethod
    def start(cls, text: str, label: str = "start", limit: int = DEFAULT_LIMIT) -> History:
        """A history holding one design and nothing to undo."""
        if limit < 1:
            raise ValueError(f"limit {limit} is too small; keep at least 1 step")
        return cls(HistoryEntry(text, label), limit=limit)

    @property
    def text(self) -> str:
        """The present design's YAML."""
        return self.present.text

    @property
    def can_undo(self) -> bool:
        return bool(self.past)

    @property
    def can_redo(self) -> bool:
        return bool(self.future)

    def push(self, text: str, label: str = "") -> History:
        """Make ``text`` the present design; the old present becomes undoable, the future is dropped."""
        if text == self.present.text:
            return self
        past = (self.past + (self.present,))[-self.limit:]
        return replace(self, present=HistoryEntry(text, label), past=past, future=())

    def undo(self) -> History:
        """Step back one design (unchanged when there is nothing to undo)."""
        if not self.past:
            return self
        return replace(self, present=self.past[-1], past=self.past[:-1], future=(self.present,) + self.future)

    def redo(self) -> History:
        """Step forward one undone design (unchanged when there is nothing to redo)."""
        if not self.future:
            return self
        return replace(self, present=self.future[0], past=self.past + (self.present,), future=self.future[1:])

    @property
    def undo_label(self) -> str:
        """The edit an undo would revert ('' when none)."""
        return self.present.label if self.past else ""

    @property
    def redo_label(self) -> str:
        """The edit a redo would re-apply ('' when none)."""
        return self.future[0].label if self.future else ""

    def __len__(self) -> int:
        return len(self.past) + 1 + len(self.future)
