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

Macro structure (stages, repeats, parallel columns) is validated here with pydantic; each
block's micro parameters are validated against the block registry's schema, and every
message names the place and the fix (``stage 2, block 1: kernel 4 is even; use 1, 3, 5 or
7``). Sizes are bounded before anything is allocated (see ``explorer.limits``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from blocks import get_block

__all__ = [
    "ArchitectureSpec",
    "BlockSpec",
    "InputSpec",
    "ParallelSpec",
    "SpecError",
    "StageSpec",
    "Unit",
    "dump_spec",
    "expand_units",
    "load_spec",
    "parse_spec_text",
    "validate_spec",
]

MAX_SPEC_BYTES = 1 << 20  # 1 MiB of YAML is far beyond any real design
MAX_INPUT_SIZE = 1024
MAX_UNITS = 512


class SpecError(ValueError):
    """A user's spec is wrong; ``errors`` lists every problem, each naming place and fix."""

    def __init__(self, errors: list[str] | str) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("; ".join(self.errors))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(_Strict):
    """Input image shape: channels and size (one int for square, or [height, width])."""

    channels: Annotated[int, Field(ge=1, le=16)] = 3
    size: Union[int, tuple[int, int]] = 224

    @field_validator("size", mode="before")
    @classmethod
    def _check_size(cls, value: Any) -> Any:
        sides = list(value) if isinstance(value, (list, tuple)) else [value]
        if (isinstance(value, (list, tuple)) and len(sides) != 2) or not all(isinstance(s, int) and not isinstance(s, bool) for s in sides):
            raise ValueError(f"input size {value!r} should be one whole number or [height, width]")
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
    type: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ParallelSpec(_Strict):
    """Parallel columns of blocks fed the same input, merged by ``add`` or ``concat``."""

    type: Literal["parallel"] = "parallel"
    merge: Literal["add", "concat"] = "add"
    branches: Annotated[list[list[BlockSpec]], Field(min_length=2, max_length=8)]

    @field_validator("branches")
    @classmethod
    def _branches_not_empty(cls, branches: list[list[BlockSpec]]) -> list[list[BlockSpec]]:
        for i, branch in enumerate(branches, 1):
            if not branch:
                raise ValueError(f"branch {i} is empty; give it at least one block or remove it")
        return branches


def _entry_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "parallel" if kind == "parallel" else "block"


StageEntry = Annotated[
    Union[Annotated[ParallelSpec, Tag("parallel")], Annotated[BlockSpec, Tag("block")]],
    Discriminator(_entry_kind),
]


class StageSpec(_Strict):
    """A stage: its block list, run ``repeat`` times (copies after the first use stride 1)."""

    name: str = ""
    repeat: Annotated[int, Field(ge=1, le=64)] = 1
    blocks: Annotated[list[StageEntry], Field(min_length=1)]


class ArchitectureSpec(_Strict):
    """A whole network: input, stem, stages, head."""

    name: Annotated[str, Field(min_length=1, max_length=80)] = "design"
    description: str = ""
    input: InputSpec = InputSpec()
    num_classes: Annotated[int, Field(ge=1, le=100_000)] = 1000
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


def _describe(field: str, err: dict[str, Any], allowed: list[str] | None = None) -> str:
    """One pydantic error -> 'field value: what is wrong; what to do'."""
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    shown = json.dumps(value) if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__
    if kind == "missing":
        return f"{field} is missing; add it"
    if kind == "extra_forbidden":
        known = f"; known: {', '.join(allowed)}" if allowed else ""
        return f"unknown parameter '{field}'{known}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
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
    return f"{field}: {err['msg']}"


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
        field = ".".join(str(p) for p in rest) or "value"
        text = _describe(field, err, allowed)
        out.append(f"{place}: {text}" if place else text)
    return out


# ----------------------------------------------------------------------------- parsing


def parse_spec_text(text: str) -> dict[str, Any]:
    """YAML or JSON text -> a mapping (``yaml.safe_load``: no object is ever constructed)."""
    if len(text.encode("utf-8", "replace")) > MAX_SPEC_BYTES:
        raise SpecError(f"the spec is larger than {MAX_SPEC_BYTES // 1024} KiB; a real design is a few KiB")
    try:
        data = yaml.safe_load(text)  # JSON is YAML, so one parser reads both
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"YAML error{where}: {problem}; fix the syntax there") from None
    if data is None:
        raise SpecError("the spec is empty; start from a preset (explorer presets) or give name, stages and head")
    if not isinstance(data, dict):
        raise SpecError(f"the spec must be a mapping (name:, stages:, head:), not a {type(data).__name__}")
    return data


def _validate_block(block: BlockSpec, place: str) -> tuple[BlockSpec | None, list[str]]:
    try:
        entry = get_block(block.type)
    except KeyError as exc:
        return None, [f"{place}: {exc.args[0]}"]
    try:
        params = entry.params_model(**block.params)
    except ValidationError as exc:
        return None, _messages(exc, place, entry.param_names)
    return BlockSpec(type=block.type, **params.model_dump(mode="json")), []


def _normalise_blocks(spec: ArchitectureSpec) -> tuple[ArchitectureSpec, list[str]]:
    errors: list[str] = []

    def fix(block: BlockSpec, place: str, category: str | None = None) -> BlockSpec:
        normal, errs = _validate_block(block, place)
        if normal is not None and category is not None:
            is_head = get_block(block.type).category == "head"
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


def validate_spec(data: dict[str, Any] | ArchitectureSpec, check_size: bool = True) -> ArchitectureSpec:
    """Structure, then every block's parameters, then sizes; raise ``SpecError`` listing all problems.

    Returns a spec whose block parameters are complete (defaults filled in), so that
    ``validate_spec(load(dump(spec))) == spec``.
    """
    if isinstance(data, ArchitectureSpec):
        data = data.to_dict()
    try:
        spec = ArchitectureSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_messages(exc, allowed=list(ArchitectureSpec.model_fields))) from None
    spec, errors = _normalise_blocks(spec)
    if errors:
        raise SpecError(errors)
    units = sum(len(st.blocks) * st.repeat for st in spec.stages) + len(spec.stem)
    if units > MAX_UNITS:
        raise SpecError(f"the design has {units} blocks after repeats; the limit is {MAX_UNITS}: lower the repeats")
    if check_size:
        from .limits import check_size as _check_size  # torch-dependent, imported late

        _check_size(spec)
    return spec


def load_spec(source: str | Path | dict[str, Any] | ArchitectureSpec, check_size: bool = True) -> ArchitectureSpec:
    """Load and validate a spec from a file path, YAML/JSON text, a mapping or a spec."""
    if isinstance(source, ArchitectureSpec):
        return validate_spec(source, check_size)
    if isinstance(source, dict):
        return validate_spec(source, check_size)
    if isinstance(source, Path) or ("\n" not in str(source) and not str(source).lstrip().startswith("{")):
        path = Path(source)
        if not path.is_file():
            raise SpecError(f"no spec file at {str(path)!r}; give a .yaml or .json path or a preset name")
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(f"{path.name} is larger than {MAX_SPEC_BYTES // 1024} KiB; is it really a spec?")
        text = path.read_text(encoding="utf-8", errors="replace")
    else:
        text = str(source)
    return validate_spec(parse_spec_text(text), check_size)


def dump_spec(spec: ArchitectureSpec, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """Serialise a spec; ``load_spec(dump_spec(spec)) == spec`` for every valid spec."""
    data = spec.to_dict()
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)


# ----------------------------------------------------------------------------- units


class Unit(BaseModel):
    """One node of the network as built: a block or a parallel group, repeats expanded."""

    model_config = ConfigDict(frozen=True)
    name: str  # "stem.b1", "s2.b3", "head"
    place: str  # "stage 2, block 1 (repeat 2)": where it is written in the spec
    stage: int  # 0 = stem, 1..n = stages, n + 1 = head
    config: Union[BlockSpec, ParallelSpec]

    @property
    def type(self) -> str:
        return self.config.type


def _without_stride(entry: BlockSpec | ParallelSpec) -> BlockSpec | ParallelSpec:
    if isinstance(entry, ParallelSpec):
        return entry.model_copy(update={"branches": [[_without_stride(b) for b in br] for br in entry.branches]})
    if entry.params.get("stride", 1) != 1:
        return BlockSpec(type=entry.type, **{**entry.params, "stride": 1})
    return entry


def expand_units(spec: ArchitectureSpec) -> list[Unit]:
    """The network's units in execution order, with stage repeats unrolled."""
    units = [Unit(name=f"stem.b{i}", place=f"stem, block {i}", stage=0, config=b) for i, b in enumerate(spec.stem, 1)]
    for s, stage in enumerate(spec.stages, 1):
        n = 0
        for r in range(stage.repeat):
            for b, entry in enumerate(stage.blocks, 1):
                n += 1
                place = f"stage {s}, block {b}" + (f" (repeat {r + 1})" if r else "")
                config = entry if r == 0 else _without_stride(entry)
                units.append(Unit(name=f"s{s}.b{n}", place=place, stage=s, config=config))
    units.append(Unit(name="head", place="head", stage=len(spec.stages) + 1, config=spec.head))
    return units


def iter_blocks(spec: ArchitectureSpec) -> Iterator[tuple[str, BlockSpec]]:
    """Every written block (parallel branches included) with its place, repeats not unrolled."""
    for i, b in enumerate(spec.stem, 1):
        yield f"stem, block {i}", b
    for s, stage in enumerate(spec.stages, 1):
        for b, entry in enumerate(stage.blocks, 1):
            if isinstance(entry, ParallelSpec):
                for r, branch in enumerate(entry.branches, 1):
                    for k, x in enumerate(branch, 1):
                        yield f"stage {s}, block {b}, branch {r}, block {k}", x
            else:
                yield f"stage {s}, block {b}", entry
    yield "head", spec.head
