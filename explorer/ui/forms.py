"""The block form: one input per constructor parameter of a block type, read from the registry.

``block_form(type)`` turns a block's JSON schema (derived from its ``__init__`` by the registry)
into ``FormField``s: kind (whole number, number, choice, switch, optional whole number), range,
choices, default and a one-line hint, so the form never needs to know a block type in advance.
``form_values`` reads a design's block into such a form; ``parse_form`` turns the raw values a
browser sends back (numbers as floats, choices as text) into parameters, reporting every bad
field by name at once. The form is shown in ``FORM_SLOTS`` fixed slots of three components each
(a number box, a choice box, a switch; ``slot_keys``), of which a field's kind shows one;
``form_raw`` picks each field's value from its slot.

The edits these values feed (``set_block_params`` ...) are the pure ones of ``explorer.edit``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from blocks import list_blocks

from ..edit import BlockRef, block_entry, get_entry, whole_number
from ..spec import ArchitectureSpec, ParallelSpec, SpecError

__all__ = [
    "FORM_SLOTS",
    "PARALLEL_FORM",
    "FieldKind",
    "FormField",
    "block_form",
    "form_raw",
    "form_values",
    "parse_form",
    "slot_keys",
]

FieldKind = Literal["int", "float", "bool", "choice", "optional_int"]

#: kinds shown in a slot's number box
NUMBER_KINDS = ("int", "float", "optional_int")


@dataclass(frozen=True)
class FormField:
    """One input of a block's form, derived from the registry's JSON schema."""

    name: str
    label: str
    kind: FieldKind
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    choices: tuple[Any, ...] = field(default_factory=tuple)
    description: str = ""

    @property
    def info(self) -> str:
        """A one-line hint: range or choices, default, meaning."""
        parts = []
        lo = self.minimum if self.minimum is not None else self.exclusive_minimum
        hi = self.maximum if self.maximum is not None else self.exclusive_maximum
        if self.kind in NUMBER_KINDS and (lo is not None or hi is not None):
            left = "" if lo is None else (f"> {_num(lo)}" if self.exclusive_minimum is not None else f"{_num(lo)}")
            right = "" if hi is None else (f"< {_num(hi)}" if self.exclusive_maximum is not None else f"{_num(hi)}")
            span = f"{left} to {right}" if left and right else (left or right)
            if span not in self.description:  # "output channels (1 to 4096)" already says it
                parts.append(span)
        if self.required:
            parts.append("required")
        elif self.kind == "optional_int" and self.default is None:
            parts.append("empty = keep the input width")
        elif self.kind != "bool":
            parts.append(f"default {self.default}")
        if self.description:
            parts.append(self.description)
        return " · ".join(parts)

    def parse(self, raw: Any) -> Any:
        """A raw form value -> the parameter value; ``SpecError`` naming the field on nonsense."""
        empty = raw is None or (isinstance(raw, str) and not raw.strip())
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
                return raw.strip().lower() == "true"
            raise SpecError(f"{self.name}: {raw!r} should be true or false")
        if empty:
            if self.kind == "optional_int":
                return None
            if self.required:
                raise SpecError(f"{self.name} is missing; enter {self._expected()}")
            return self.default
        if self.kind == "choice":
            for choice in self.choices:
                if str(choice) == str(raw).strip():
                    return choice
            options = ", ".join(str(c) for c in self.choices)
            raise SpecError(f"{self.name} {raw!r} is not allowed; use one of {options}")
        if self.kind in ("int", "optional_int"):
            return whole_number(raw, self.name)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise SpecError(f"{self.name} {raw!r} should be a number") from None
        if not math.isfinite(value):
            raise SpecError(f"{self.name} {raw!r} should be a finite number")
        return value

    def _expected(self) -> str:
        what = "a whole number" if self.kind in ("int", "optional_int") else "a number"
        lo = self.minimum if self.minimum is not None else self.exclusive_minimum
        hi = self.maximum if self.maximum is not None else self.exclusive_maximum
        return f"{what} ({_num(lo)} to {_num(hi)})" if lo is not None and hi is not None else what


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _field_from_schema(name: str, prop: dict[str, Any], required: bool) -> FormField:
    label = prop.get("title", name.replace("_", " ").title())
    description = prop.get("description", "")
    optional = False
    if "anyOf" in prop:  # Optional[int]: {"anyOf": [{"type": "integer", ...}, {"type": "null"}]}
        options = [p for p in prop["anyOf"] if p.get("type") != "null"]
        optional = len(options) < len(prop["anyOf"])
        inner = options[0] if options else {}
        description = description or inner.get("description", "")
        prop = {**inner, **{k: v for k, v in prop.items() if k != "anyOf"}}
    if "enum" in prop:
        return FormField(name, label, "choice", prop.get("default"), required, choices=tuple(prop["enum"]),
                         description=description)
    kind = prop.get("type")
    if kind == "boolean":
        return FormField(name, label, "bool", prop.get("default", False), required, description=description)
    if kind in ("integer", "number"):
        number_kind: FieldKind = "float" if kind == "number" else "optional_int" if optional else "int"
        return FormField(name, label, number_kind, prop.get("default"), required, prop.get("minimum"),
                         prop.get("maximum"), prop.get("exclusiveMinimum"), prop.get("exclusiveMaximum"),
                         description=description)
    raise SpecError(f"parameter {name!r} has a type the form cannot show ({kind}); edit it in the YAML editor")


def block_form(block_type: str) -> list[FormField]:
    """The form of a block type: one field per parameter, in constructor order."""
    schema = block_entry(block_type).json_schema()
    required = set(schema.get("required", []))
    return [_field_from_schema(n, p, n in required) for n, p in schema.get("properties", {}).items()]


#: the form of a parallel group: how its columns merge (its columns' blocks are edited in the YAML tab)
PARALLEL_FORM = [FormField("merge", "Merge", "choice", "add", True, choices=("add", "concat"),
                           description="add: the columns' outputs are summed (equal widths); "
                                       "concat: stacked along channels (widths add up)")]


def form_values(spec: ArchitectureSpec, ref: BlockRef) -> tuple[str, list[FormField], list[Any]]:
    """(block type, its form, the block's current value for each field) for the block at ``ref``."""
    entry = get_entry(spec, ref)
    if isinstance(entry, ParallelSpec):
        return "parallel", PARALLEL_FORM, [entry.merge]
    fields = block_form(entry.type)
    params = entry.params
    return entry.type, fields, [params.get(f.name, f.default) for f in fields]


def parse_form(fields: Sequence[FormField], raw: Sequence[Any]) -> dict[str, Any]:
    """Raw form values -> parameters; every bad field is reported at once."""
    if len(raw) < len(fields):
        raise SpecError(f"the form sent {len(raw)} values for {len(fields)} fields; reload the block")
    params, errors = {}, []
    for f, value in zip(fields, raw[:len(fields)], strict=True):
        try:
            params[f.name] = f.parse(value)
        except SpecError as exc:
            errors.extend(exc.errors)
    if errors:
        raise SpecError(errors)
    return params


#: the most parameters any registered block has: the form has that many slots
FORM_SLOTS = max(len(block_form(entry.name)) for entry in list_blocks())


def slot_keys(i: int) -> tuple[str, str, str]:
    """Output names of form slot ``i``: its number box, its choice box, its switch."""
    return f"slot{i}_number", f"slot{i}_choice", f"slot{i}_check"


def form_raw(fields: Sequence[FormField], slot_values: Sequence[Any]) -> list[Any]:
    """Each field's raw value, from its slot's component of the field's kind.

    ``slot_values`` holds three values per slot in slot order (number, choice, switch), as the
    page sends them; slot ``i`` shows field ``i``.
    """
    raw = []
    for i, f in enumerate(fields):
        number, choice, check = slot_values[3 * i: 3 * i + 3]
        raw.append(number if f.kind in NUMBER_KINDS else choice if f.kind == "choice" else check)
    return raw
