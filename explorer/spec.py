"""The declarative macro-micro architecture spec.

A spec is data (YAML or JSON)::

    name: tiny
    input: {channels: 3, size: 224}
    num_classes: 1000
    stem:
      - {type: conv, out: 16, kernel: 3, stride: 2, act: hswish}
    stages:
      - name: high-res
        repeat: 2                     # the block list runs twice; copies after the first use stride 1
        blocks:
          - {type: attention_condenser, condense_steps: 2}
          - {type: parallel, merge: add, branches: [[{type: conv, out: 16}], [{type: dwsep, out: 16}]]}
    head: {type: classifier, hidden: 1280}

This module is the pure spec layer: it needs neither torch nor the builder. It holds the
schema (pydantic models), the messages, YAML/JSON parsing and dumping, and the validation of the
macro structure (stages, repeats, parallel columns). Reading YAML/JSON text, bounded while it
is read, is ``explorer.spec_yaml.parse_spec_text``. Each block's micro parameters are validated
against the schemas of a block registry that the caller passes in (``validate_spec(data,
blocks.get_block)``): the registry derives each schema from a ``torch.nn.Module`` constructor, so
importing it would import torch. Every message names the place and the fix (``stage 2, block 1:
kernel 4 is even; use 1, 3, 5, 7, 9 or 11``).

Reading a design from any source, with the registry bound and sizes checked on the meta device
before anything is allocated, is ``explorer.design.load_design``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "HEAD_STAGE",
    "MAX_UNITS",
    "ArchitectureSpec",
    "BlockLookup",
    "BlockSchema",
    "BlockSpec",
    "InputSpec",
    "ParallelSpec",
    "SpecError",
    "StageSpec",
    "Unit",
    "UnitAddress",
    "clip",
    "config_from_json",
    "count_blocks",
    "dump_spec",
    "expand_units",
    "validate_spec",
]

MAX_SPEC_BYTES = 1 << 20  # 1 MiB of YAML is far beyond any real design
MAX_INPUT_SIZE = 1024
#: blocks after repeats, every block in every column of a parallel group counted
MAX_UNITS = 512
MAX_BRANCHES = 8  # columns of one parallel group
MAX_BRANCH_BLOCKS = 16  # blocks in one column
# While YAML/JSON is read (see ``_SpecComposer``): a design nests 9 levels deep at most (a value of
# a block in a parallel column), and a 512-block design written out with every default is 11 k nodes.
MAX_DEPTH = 32
MAX_NODES = 100_000  # after alias expansion: an alias counts the nodes it refers to, each time it is used
MAX_ALIASES = 1024
MAX_DIGITS = 18  # of a written integer: int64 range, and far below Python's own 4300-digit limit
MAX_NAME_CHARS = 80  # a design's, a stage's name
MAX_DESCRIPTION_CHARS = 2000
MAX_TYPE_CHARS = 40  # a block type
MAX_SHOWN_CHARS = 80  # a user's value echoed in a message
MAX_MESSAGE_CHARS = 2000  # a SpecError's problems joined


def clip(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking the cut: how messages echo a user's value."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: Any) -> str:
    """A user's value as a message shows it: JSON for plain values and short lists of them, else its
    type; at most ``MAX_SHOWN_CHARS``."""
    plain = (str, int, float, bool, type(None))
    if isinstance(value, plain) or (
        isinstance(value, (list, tuple)) and len(value) <= 8 and all(isinstance(v, plain) for v in value)
    ):
        try:
            return clip(json.dumps(value))
        except ValueError:  # an int past Python's digit limit (a mapping given in code, not read from text)
            return "a number too long to show"
    return type(value).__name__


class SpecError(ValueError):
    """A user's spec is wrong; ``errors`` lists every problem, each naming place and fix.

    Bounded: each problem is cut to ``MAX_MESSAGE_CHARS`` characters, and the problems that would
    take the joined message past it are summed up as a last entry ``… and N more problems``.
    """

    def __init__(self, errors: list[str] | str) -> None:
        problems = [errors] if isinstance(errors, str) else list(errors)
        kept: list[str] = []
        used = 0
        for i, problem in enumerate(problems):
            text = clip(str(problem), MAX_MESSAGE_CHARS)
            if kept and used + len(text) > MAX_MESSAGE_CHARS:
                left = len(problems) - i
                kept.append(f"… and {left} more problem{'s' if left > 1 else ''}")
                break
            kept.append(text)
            used += len(text) + 2
        self.errors = kept
        super().__init__("; ".join(self.errors))


def _refuse_bool(value: Any) -> Any:
    """YAML's ``true`` is not the number 1 (pydantic's lax mode would take it as one)."""
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer, not true or false")
    return value


#: a whole number that refuses true/false (block parameters get the same from ``blocks.registry``)
WholeNumber = Annotated[int, BeforeValidator(_refuse_bool)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(_Strict):
    """Input image shape: channels and size (one int for square, or [height, width])."""

    channels: Annotated[WholeNumber, Field(ge=1, le=16)] = 3
    size: int | tuple[int, int] = 224

    @field_validator("size", mode="before")
    @classmethod
    def _check_size(cls, value: Any) -> Any:
        sides = list(value) if isinstance(value, (list, tuple)) else [value]
        whole = all(isinstance(s, int) and not isinstance(s, bool) for s in sides)
        if (isinstance(value, (list, tuple)) and len(sides) != 2) or not whole:
            raise ValueError(f"input size {_show(value)} should be one whole number or [height, width]")
        for s in sides:
            if not 8 <= s <= MAX_INPUT_SIZE:
                raise ValueError(f"input size {s} is out of range; use 8 to {MAX_INPUT_SIZE} pixels")
        return value if isinstance(value, int) else tuple(value)

    @property
    def hw(self) -> tuple[int, int]:
        return (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)  # type: ignore[return-value]


class BlockSpec(BaseModel):
    """One block: its registry ``type`` plus that block's parameters, written flat."""

    model_config = ConfigDict(extra="allow")
    type: Annotated[str, Field(max_length=MAX_TYPE_CHARS)]

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ParallelSpec(_Strict):
    """Parallel columns of blocks fed the same input, merged by ``add`` or ``concat``."""

    type: Literal["parallel"] = "parallel"
    merge: Literal["add", "concat"] = "add"
    branches: Annotated[list[list[BlockSpec]], Field(min_length=2, max_length=MAX_BRANCHES)]

    @field_validator("branches")
    @classmethod
    def _branches_not_empty(cls, branches: list[list[BlockSpec]]) -> list[list[BlockSpec]]:
        for i, branch in enumerate(branches, 1):
            if not branch:
                raise ValueError(f"branch {i} is empty; give it at least one block or remove it")
            if len(branch) > MAX_BRANCH_BLOCKS:
                raise ValueError(f"branch {i} has {len(branch)} blocks; a column holds at most {MAX_BRANCH_BLOCKS}")
        return branches


def _entry_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "parallel" if kind == "parallel" else "block"


StageEntry = Annotated[
    Annotated[ParallelSpec, Tag("parallel")] | Annotated[BlockSpec, Tag("block")],
    Discriminator(_entry_kind),
]


class StageSpec(_Strict):
    """A stage: its block list, run ``repeat`` times (copies after the first use stride 1)."""

    name: Annotated[str, Field(max_length=MAX_NAME_CHARS)] = ""
    repeat: Annotated[WholeNumber, Field(ge=1, le=64)] = 1
    blocks: Annotated[list[StageEntry], Field(min_length=1)]


class ArchitectureSpec(_Strict):
    """A whole network: input, stem, stages, head."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)] = "design"
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS)] = ""
    input: InputSpec = InputSpec()
    num_classes: Annotated[WholeNumber, Field(ge=1, le=100_000)] = 1000
    stem: list[BlockSpec] = []
    stages: list[StageSpec] = []
    head: BlockSpec = BlockSpec(type="classifier")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return dump_spec(self, "yaml")


# ----------------------------------------------------------------------------- messages

_TYPE_WORDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping of names to values",
    "model_type": "a mapping of names to values",
    "model_attributes_type": "a mapping of names to values",
    "tuple_type": "a list",
}


def _describe(field: str, err: Mapping[str, Any], allowed: list[str] | None = None) -> str:
    """One pydantic error -> 'field value: what is wrong; what to do'."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    shown = _show(value)
    if kind == "missing":
        return f"{field} is missing; add it"
    if kind == "extra_forbidden":
        known = f"; known: {', '.join(allowed)}" if allowed else ""
        return f"unknown parameter '{field}'{known}"
    if kind == "value_error":
        return clip(str(ctx.get("error", err["msg"])), MAX_MESSAGE_CHARS // 4)
    if kind == "string_too_long":
        length = len(value) if isinstance(value, str) else "too many"
        return f"{field} has {length} characters; use at most {ctx['max_length']}"
    if kind == "string_too_short":
        return f"{field} is empty; give it at least {ctx['min_length']} character(s)"
    if kind == "greater_than_equal":
        return f"{field} {shown} is too small; use at least {ctx['ge']}"
    if kind == "greater_than":
        return f"{field} {shown} is too small; use more than {ctx['gt']}"
    if kind == "less_than_equal":
        return f"{field} {shown} is too large; use at most {ctx['le']}"
    if kind == "less_than":
        return f"{field} {shown} is too large; use less than {ctx['lt']}"
    if kind == "literal_error":
        return f"{field} {shown} is not allowed; use one of {ctx['expected']}"
    if kind == "too_short":
        return f"{field} has {ctx.get('actual_length')} item(s); give at least {ctx.get('min_length')}"
    if kind == "too_long":
        return f"{field} has {ctx.get('actual_length')} item(s); give at most {ctx.get('max_length')}"
    if kind in _TYPE_WORDS:
        return f"{field} {shown} should be {_TYPE_WORDS[kind]}"
    return f"{field}: {clip(err['msg'])}"


def _place(loc: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """Translate a pydantic location into ('stage 2, block 1', remaining field path)."""
    parts: list[str] = []
    loc = tuple(p for p in loc if p not in ("parallel", "block"))  # discriminator tags
    i = 0
    while i < len(loc):
        key = loc[i]
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        if key == "stages" and isinstance(nxt, int):
            parts.append(f"stage {nxt + 1}")
            i += 2
        elif key == "stem" and isinstance(nxt, int):
            parts.append(f"stem, block {nxt + 1}")
            i += 2
        elif key == "blocks" and isinstance(nxt, int):
            parts.append(f"block {nxt + 1}")
            i += 2
        elif key == "branches" and isinstance(nxt, int):
            parts.append(f"branch {nxt + 1}")
            i += 2
            if i < len(loc) and isinstance(loc[i], int):
                parts.append(f"block {loc[i] + 1}")
                i += 1
        elif key in ("head", "input"):
            parts.append(str(key))
            i += 1
        else:
            break
    return ", ".join(parts), loc[i:]


def _messages(error: ValidationError, prefix: str = "", allowed: list[str] | None = None) -> list[str]:
    out = []
    for err in error.errors():
        place, rest = _place(tuple(err["loc"]))
        place = ", ".join(p for p in (prefix, place) if p)
        field = clip(".".join(str(p) for p in rest)) or "value"
        text = _describe(field, err, allowed)
        out.append(f"{place}: {text}" if place else text)
    return out


# ----------------------------------------------------------------------------- validation


class BlockSchema(Protocol):
    """What validation reads of one registry entry (``blocks.BlockEntry`` is one)."""

    @property
    def params_model(self) -> type[BaseModel]: ...

    @property
    def category(self) -> str: ...

    @property
    def param_names(self) -> list[str]: ...


#: a block type -> its schema; an unknown type raises ``KeyError`` whose message lists the known ones
BlockLookup = Callable[[str], BlockSchema]


def _validate_block(block: BlockSpec, place: str, registry: BlockLookup) -> tuple[BlockSpec | None, list[str]]:
    try:
        entry = registry(block.type)
    except KeyError as exc:
        return None, [f"{place}: {exc.args[0]}"]
    try:
        params = entry.params_model(**block.params)
    except ValidationError as exc:
        return None, _messages(exc, place, entry.param_names)
    return BlockSpec(type=block.type, **params.model_dump(mode="json")), []


def _normalise_blocks(spec: ArchitectureSpec, registry: BlockLookup) -> tuple[ArchitectureSpec, list[str]]:
    errors: list[str] = []

    def fix(block: BlockSpec, place: str, category: str) -> BlockSpec:
        normal, errs = _validate_block(block, place, registry)
        if normal is not None:
            is_head = registry(block.type).category == "head"
            if is_head and category != "head":
                errs = [f"{place}: {block.type} is a head block; put it under head:, not in a stage or the stem"]
            elif category == "head" and not is_head:
                errs = [f"{place}: {block.type} is not a head block; use type: classifier"]
        errors.extend(errs)
        return normal or block

    stem = [fix(b, f"stem, block {i}", "body") for i, b in enumerate(spec.stem, 1)]
    stages = []
    for s, stage in enumerate(spec.stages, 1):
        entries: list[BlockSpec | ParallelSpec] = []
        for b, entry in enumerate(stage.blocks, 1):
            place = f"stage {s}, block {b}"
            if isinstance(entry, ParallelSpec):
                branches = [
                    [fix(x, f"{place}, branch {r}, block {k}", "body") for k, x in enumerate(branch, 1)]
                    for r, branch in enumerate(entry.branches, 1)
                ]
                entries.append(entry.model_copy(update={"branches": branches}))
            else:
                entries.append(fix(entry, place, "body"))
        stages.append(stage.model_copy(update={"blocks": entries}))
    head = fix(spec.head, "head", "head")
    return spec.model_copy(update={"stem": stem, "stages": stages, "head": head}), errors


def validate_spec(data: dict[str, Any] | ArchitectureSpec, registry: BlockLookup) -> ArchitectureSpec:
    """Structure, then every block's parameters against ``registry``; raise ``SpecError`` listing all problems.

    Returns a spec whose block parameters are complete (defaults filled in), so that
    ``validate_spec(parse_spec_text(dump_spec(spec)), registry) == spec``. Sizes are not checked
    here (that needs the builder): ``explorer.design.load_design`` does both.
    """
    if isinstance(data, ArchitectureSpec):
        data = data.to_dict()
    if isinstance(data, Mapping):  # counted on the raw mapping, before thousands of blocks are validated
        blocks = count_blocks(data)
        if blocks > MAX_UNITS:
            raise SpecError(
                f"the design has {blocks} blocks after repeats (every block in a parallel group's columns "
                f"counts); the limit is {MAX_UNITS}: lower the repeats or remove blocks"
            )
    try:
        spec = ArchitectureSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_messages(exc, allowed=list(ArchitectureSpec.model_fields))) from None
    spec, errors = _normalise_blocks(spec, registry)
    if errors:
        raise SpecError(errors)
    return spec


def count_blocks(data: Mapping[str, Any]) -> int:
    """Blocks of a spec mapping, valid or not, after stage repeats: the stem's, plus per stage
    ``repeat × Σ entries`` where a parallel entry counts every block of every column.

    Reads only list lengths (and a stage's ``repeat`` if it is a whole number from 1 to 64), so it
    is linear in the size of the mapping and safe on anything ``parse_spec_text`` returns.
    """

    def length(value: Any) -> int:
        return len(value) if isinstance(value, list) else 0

    def weight(entry: Any) -> int:
        if isinstance(entry, Mapping) and entry.get("type") == "parallel" and isinstance(entry.get("branches"), list):
            return max(1, sum(length(branch) for branch in entry["branches"]))
        return 1

    total = length(data.get("stem"))
    stages = data.get("stages")
    for stage in stages if isinstance(stages, list) else []:
        if not isinstance(stage, Mapping) or not isinstance(stage.get("blocks"), list):
            continue
        repeat = stage.get("repeat", 1)
        repeat = repeat if isinstance(repeat, int) and not isinstance(repeat, bool) and 1 <= repeat <= 64 else 1
        total += repeat * sum(weight(entry) for entry in stage["blocks"])
    return total


def dump_spec(spec: ArchitectureSpec, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """Serialise a spec; ``load_design(dump_spec(spec)) == spec`` for every valid spec."""
    data = spec.to_dict()
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    # libyaml's emitter (5x faster, the same text): every UI edit dumps the design
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=None, width=120)


def config_from_json(config_json: str) -> BlockSpec | ParallelSpec:
    """Inverse of ``config.model_dump_json()`` for a unit's config (the hashable key of unit caches)."""
    raw = json.loads(config_json)
    return ParallelSpec.model_validate(raw) if raw.get("type") == "parallel" else BlockSpec.model_validate(raw)


# ----------------------------------------------------------------------------- units

#: the stage number that addresses the head
HEAD_STAGE = -1


@dataclass(frozen=True)
class UnitAddress:
    """Where a unit sits in the written spec, by structure (never by parsing a label).

    ``stage``: 0 = the stem, 1..n = the stages, ``HEAD_STAGE`` (-1) = the head;
    ``block``: 1-based position in the stage's *written* block list (1 for the head);
    ``repeat``: 1-based copy of the stage's block list (copies after the first use stride 1);
    ``branch``: 1-based column of a parallel group when a block inside one is meant, else ``None``.
    """

    stage: int
    block: int = 1
    repeat: int = 1
    branch: int | None = None

    @classmethod
    def head(cls) -> UnitAddress:
        return cls(HEAD_STAGE)

    @property
    def is_head(self) -> bool:
        return self.stage == HEAD_STAGE

    @property
    def is_stem(self) -> bool:
        return self.stage == 0

    @property
    def place(self) -> str:
        """The address in the validator's words: ``stage 2, block 1 (repeat 2)``, ``stem, block 1``, ``head``."""
        if self.is_head:
            return "head"
        text = f"stem, block {self.block}" if self.is_stem else f"stage {self.stage}, block {self.block}"
        if self.branch is not None:
            text += f", branch {self.branch}"
        return text + (f" (repeat {self.repeat})" if self.repeat > 1 else "")


class Unit(BaseModel):
    """One node of the network as built: a block or a parallel group, repeats expanded.

    ``index`` is the unit's 1-based position in its stage (or the stem) with repeats unrolled: the
    built module is named ``b{index}`` there (``stages.1.b3`` in a state dict). ``stage`` orders
    the network for charts: 0 = stem, 1..n = stages, n + 1 = head.
    """

    model_config = ConfigDict(frozen=True)
    address: UnitAddress
    index: int
    stage: int
    config: BlockSpec | ParallelSpec

    @property
    def type(self) -> str:
        return self.config.type

    @property
    def place(self) -> str:
        return self.address.place

    @property
    def name(self) -> str:
        """A short display label (``stem.b1``, ``s2.b3``, ``head``); key on ``address``, not on this."""
        if self.address.is_head:
            return "head"
        return f"stem.b{self.index}" if self.address.is_stem else f"s{self.address.stage}.b{self.index}"

    @property
    def module_path(self) -> str:
        """The built module's path in ``ExplorerNet`` (``stem.b1``, ``stages.1.b3``, ``head``)."""
        if self.address.is_head:
            return "head"
        return f"stem.b{self.index}" if self.address.is_stem else f"stages.{self.address.stage - 1}.b{self.index}"


def _without_stride(entry: BlockSpec | ParallelSpec) -> BlockSpec | ParallelSpec:
    if isinstance(entry, ParallelSpec):
        return entry.model_copy(update={"branches": [[_without_stride(b) for b in br] for br in entry.branches]})
    if entry.params.get("stride", 1) != 1:
        return BlockSpec(type=entry.type, **{**entry.params, "stride": 1})
    return entry


def expand_units(spec: ArchitectureSpec) -> list[Unit]:
    """The network's units in execution order, with stage repeats unrolled."""
    units = [Unit(address=UnitAddress(0, i), index=i, stage=0, config=b) for i, b in enumerate(spec.stem, 1)]
    for s, stage in enumerate(spec.stages, 1):
        n = 0
        for r in range(1, stage.repeat + 1):
            for b, entry in enumerate(stage.blocks, 1):
                n += 1
                config = entry if r == 1 else _without_stride(entry)
                units.append(Unit(address=UnitAddress(s, b, r), index=n, stage=s, config=config))
    units.append(Unit(address=UnitAddress.head(), index=1, stage=len(spec.stages) + 1, config=spec.head))
    return units
