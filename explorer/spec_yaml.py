"""Reading a spec's YAML or JSON text, bounded while it is read.

``parse_spec_text(text) -> dict``: PyYAML's safe loading (no Python object is ever constructed),
with the spec layer's bounds applied while the node graph is composed, before any Python
object exists: nesting depth (``MAX_DEPTH``), values after alias expansion (``MAX_NODES``; an
alias counts the size of what it refers to each time it is used), aliases (``MAX_ALIASES``),
digits of an integer (``MAX_DIGITS``), finite numbers only, and no duplicate keys. JSON is
YAML, so one reader serves both. Every refusal is a one-line ``SpecError`` naming the line.
Pure: no torch, no builder.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from .spec import MAX_ALIASES, MAX_DEPTH, MAX_DIGITS, MAX_NODES, MAX_SPEC_BYTES, SpecError, clip

try:  # libyaml's event parser: PyYAML's wheels ship it, ~10x faster than the pure-Python parser
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - a PyYAML built without libyaml
    CParser = None  # type: ignore[assignment,misc]

__all__ = ["parse_spec_text"]


def _line(node_or_event: Node | NodeEvent) -> str:
    mark = node_or_event.start_mark
    return f"line {mark.line + 1}" if mark is not None else "the spec"


class _SpecComposer(Composer):
    """PyYAML's composer, bounded while it builds the node graph (before any Python object exists).

    Refuses nesting past ``MAX_DEPTH``, more than ``MAX_NODES`` nodes, counting an alias as the
    size of the subtree it refers to each time it is used (so that ``&a [*b, *b, ...]`` chains,
    which expand exponentially, are refused while they are still a few kilobytes), more than
    ``MAX_ALIASES`` aliases, and an alias inside its own anchor (a structure that contains itself).
    """

    peek_event: Callable[[], Any]  # the parser's, later in the loader's bases

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._nodes = 0
        self._aliases = 0
        self._sizes: dict[int, int] = {}  # id(anchored node) -> its expanded size, once composed

    def _add(self, count: int, event: NodeEvent) -> None:
        self._nodes += count
        if self._nodes > MAX_NODES:
            raise SpecError(
                f"{_line(event)}: the spec has more than {MAX_NODES:,} values once its aliases are expanded; "
                "a design needs a few thousand: write it out or use stage repeats"
            )

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)  # an undefined alias is PyYAML's ComposerError
            size = self._sizes.get(id(node))
            if size is None:
                raise SpecError(
                    f"{_line(event)}: the alias *{clip(str(event.anchor))} is used inside its own anchor; "
                    "a spec cannot contain itself"
                )
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise SpecError(f"{_line(event)}: the spec uses more than {MAX_ALIASES} aliases; write it out instead")
            self._add(size, event)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise SpecError(
                f"{_line(event)}: the spec nests deeper than {MAX_DEPTH} levels; a design needs at most 9 "
                "(stages: / - blocks: / - type: parallel / branches: / - - {type: ..., out: ...})"
            )
        start = self._nodes
        self._add(1, event)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if getattr(event, "anchor", None) is not None:
            self._sizes[id(node)] = self._nodes - start
        return node


class _SpecConstructor(SafeConstructor):
    """``SafeConstructor`` that refuses duplicate keys, integers past ``MAX_DIGITS`` digits, inf and nan."""

    def construct_yaml_int(self, node: ScalarNode) -> int:
        digits = str(node.value).replace("_", "").lstrip("+-")
        if len(digits) > MAX_DIGITS:
            raise SpecError(
                f"{_line(node)}: the number {clip(str(node.value), 24)} has {len(digits)} digits; "
                f"a spec's numbers have at most {MAX_DIGITS}"
            )
        return int(super().construct_yaml_int(node))

    def construct_yaml_float(self, node: ScalarNode) -> float:
        value = float(super().construct_yaml_float(node))
        if not math.isfinite(value):
            raise SpecError(f"{_line(node)}: {clip(str(node.value), 24)} is not a finite number; give an ordinary one")
        return value

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for key_node, _value in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # a merge (<<) may be overridden by the keys written beside it
                key = (key_node.tag, str(key_node.value))
                line = key_node.start_mark.line + 1
                if key in seen:
                    first = "" if seen[key] == line else f" (first on line {seen[key]})"
                    raise SpecError(
                        f"line {line}: the key {clip(key[1])!r} is given twice in one mapping{first}; keep one")
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


_SpecConstructor.add_constructor("tag:yaml.org,2002:int", _SpecConstructor.construct_yaml_int)  # type: ignore[type-var]
_SpecConstructor.add_constructor("tag:yaml.org,2002:float", _SpecConstructor.construct_yaml_float)  # type: ignore[type-var]


class _PySpecLoader(Reader, Scanner, Parser, _SpecComposer, _SpecConstructor, Resolver):
    """The bounded loader on PyYAML's pure-Python scanner and parser."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _SpecComposer.__init__(self)
        _SpecConstructor.__init__(self)
        Resolver.__init__(self)


_SpecLoader: type[_PySpecLoader] | type[_CSpecLoader]
if CParser is not None:

    class _CSpecLoader(_SpecComposer, CParser, _SpecConstructor, Resolver):
        """The bounded loader on libyaml's event parser (our composer and constructor over its events)."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _SpecComposer.__init__(self)
            _SpecConstructor.__init__(self)
            Resolver.__init__(self)

    _SpecLoader = _CSpecLoader
else:  # pragma: no cover
    _SpecLoader = _PySpecLoader


def parse_spec_text(text: str) -> dict[str, Any]:
    """YAML or JSON text -> a mapping, bounded while it is read; ``SpecError`` for anything else.

    Safe (only YAML's plain types: no object is ever constructed from a tag) and bounded before
    Python objects exist: at most ``MAX_SPEC_BYTES``, ``MAX_DEPTH`` levels, ``MAX_NODES`` nodes
    with aliases expanded, ``MAX_DIGITS``-digit integers, finite floats, and no key twice in a mapping.
    JSON is YAML, so one parser reads both (and JSON gets the same bounds).
    """
    if len(text) > MAX_SPEC_BYTES or len(text.encode("utf-8", "replace")) > MAX_SPEC_BYTES:
        raise SpecError(f"the spec is larger than {MAX_SPEC_BYTES // 1024} KiB; a real design is a few KiB")
    loader = _SpecLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = ""
        if mark is not None:
            line, column = mark.line + 1, mark.column + 1
            lines = text.splitlines() or [""]
            if line > len(lines):  # libyaml marks the end of the text one line past its last
                line, column = len(lines), len(lines[-1]) + 1
            where = f" at line {line}, column {column}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"YAML error{where}: {clip(str(problem), 200)}; fix the syntax there") from None
    finally:
        loader.dispose()
    if data is None:
        raise SpecError("the spec is empty; start from a preset (explorer presets) or give name, stages and head")
    if not isinstance(data, dict):
        raise SpecError(f"the spec must be a mapping (name:, stages:, head:), not a {type(data).__name__}")
    return data
