"""Pure spec-editing operations: the verbs of the explorer's block editor.

Every operation takes a validated ``ArchitectureSpec`` and returns a new validated one (through
``explorer.design.load_design``), or raises ``SpecError`` whose messages name the place and the fix; the input
spec is never modified. Blocks are addressed by a ``BlockRef``:

==============  ===========================  =====================
address         meaning                      key (a UI value)
==============  ===========================  =====================
stage 0, b      stem, block b                ``"0:b"``
stage s, b      stage s, block b (written)   ``"s:b"``
stage -1        the head                     ``"head"``
==============  ===========================  =====================

Block numbers are positions in the *written* block list of a stage (before repeats are
unrolled), 1-based, like the places in the validator's messages.

The block form that edits a block's parameters (``FormField``, ``block_form``, ``parse_form``) lives
in ``explorer.ui.forms``, on top of these edits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from blocks import BlockEntry, get_block, list_blocks

from .design import load_design
from .limits import channels_before
from .spec import HEAD_STAGE, ArchitectureSpec, BlockSpec, ParallelSpec, SpecError, UnitAddress, expand_units

__all__ = [
    "BlockRef",
    "add_block",
    "add_stage",
    "block_entry",
    "block_label",
    "block_refs",
    "empty_spec",
    "get_entry",
    "move_block",
    "palette",
    "remove_block",
    "remove_stage",
    "replace_block_type",
    "set_block_params",
    "set_stage",
    "settings_text",
    "unit_refs",
    "whole_number",
]


# ----------------------------------------------------------------------------- addresses


@dataclass(frozen=True)
class BlockRef:
    """Where a written block is: ``stage`` 0 = stem, 1..n = stages, -1 = head; ``block`` 1-based."""

    stage: int
    block: int = 1

    @property
    def is_head(self) -> bool:
        return self.stage == HEAD_STAGE

    @property
    def key(self) -> str:
        """The address as a short string (``"0:1"``, ``"2:3"``, ``"head"``)."""
        return "head" if self.is_head else f"{self.stage}:{self.block}"

    @property
    def place(self) -> str:
        """The address in the validator's words (``stage 2, block 1``)."""
        return UnitAddress(self.stage, self.block).place

    @classmethod
    def parse(cls, key: str | None) -> BlockRef:
        """Inverse of ``key``; a malformed key raises ``SpecError``."""
        text = (key or "").strip()
        if text == "head":
            return cls(HEAD_STAGE, 1)
        try:
            stage, block = (int(p) for p in text.split(":"))
        except ValueError:
            raise SpecError(f"block address {key!r} is not understood; pick a block from the list") from None
        if stage < 0 or block < 1:
            raise SpecError(f"block address {key!r} is out of range; pick a block from the list")
        return cls(stage, block)


def get_entry(spec: ArchitectureSpec, ref: BlockRef) -> BlockSpec | ParallelSpec:
    """The written block (or parallel group) at ``ref``; ``SpecError`` if there is none."""
    if ref.is_head:
        return spec.head
    if ref.stage == 0:
        blocks: Sequence[BlockSpec | ParallelSpec] = spec.stem
        where = "the stem"
    else:
        if not 1 <= ref.stage <= len(spec.stages):
            raise SpecError(f"there is no stage {ref.stage}; the design has {len(spec.stages)} stages")
        blocks = spec.stages[ref.stage - 1].blocks
        where = f"stage {ref.stage}"
    if not 1 <= ref.block <= len(blocks):
        raise SpecError(f"{where} has no block {ref.block}; it has {len(blocks)}")
    return blocks[ref.block - 1]


def settings_text(entry: BlockSpec | ParallelSpec) -> str:
    """A compact description of a block's main settings (``out 24 · k3 · s2 · e4.5``)."""
    if isinstance(entry, ParallelSpec):
        return f"{len(entry.branches)} columns, {entry.merge}"
    p = entry.params
    parts = []
    for key, fmt in (("out", "out {}"), ("kernel", "k{}"), ("stride", "s{}"), ("expand", "e{}"),
                     ("condense_steps", "{} condense"), ("embed_kernel", "k{}"), ("dim", "d{}"),
                     ("depth", "depth {}"), ("hidden", "hidden {}")):
        if key in p and p[key] is not None and not (key == "hidden" and p[key] == 0):
            value = p[key]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            parts.append(fmt.format(value))
    if p.get("se"):
        parts.append(f"se {p['se']}")
    if p.get("anti_alias"):
        parts.append("aa")
    return " · ".join(parts)


def block_label(ref: BlockRef, entry: BlockSpec | ParallelSpec) -> str:
    """A line for the block picker: ``stage 2, block 1 · ir (out 24 · k3 · s2)``."""
    extra = settings_text(entry)
    return f"{ref.place} · {entry.type}" + (f" ({extra})" if extra else "")


def block_refs(spec: ArchitectureSpec) -> list[tuple[str, BlockRef]]:
    """Every written block in order (stem, stages, head) as (label, ref)."""
    out = [(block_label(BlockRef(0, i), b), BlockRef(0, i)) for i, b in enumerate(spec.stem, 1)]
    for s, stage in enumerate(spec.stages, 1):
        out += [(block_label(BlockRef(s, i), b), BlockRef(s, i)) for i, b in enumerate(stage.blocks, 1)]
    head = BlockRef(HEAD_STAGE, 1)
    out.append((block_label(head, spec.head), head))
    return out


def unit_refs(spec: ArchitectureSpec) -> list[BlockRef]:
    """For every unit of ``expand_units(spec)`` (repeats unrolled), the written block it comes from."""
    return [BlockRef(u.address.stage, u.address.block) for u in expand_units(spec)]


# ----------------------------------------------------------------------------- palette


def block_entry(block_type: str) -> BlockEntry:
    """The registry entry of ``block_type``; ``SpecError`` naming the palette when there is none."""
    try:
        return get_block(block_type)
    except KeyError as exc:
        raise SpecError(f"{exc.args[0]}; pick one from the palette") from None


def palette(include_head: bool = False) -> list[tuple[str, str]]:
    """Registry blocks as (label, type) for the block palette, body blocks first."""
    out = []
    for entry in list_blocks():
        if (entry.category == "head") != include_head:
            continue
        out.append((f"{entry.name} · {entry.category} — {entry.summary}", entry.name))
    return out


def new_block(block_type: str, width: int) -> dict[str, Any]:
    """A block of ``block_type`` with its defaults, keeping ``width`` channels where it has an ``out``."""
    entry = block_entry(block_type)
    data: dict[str, Any] = {"type": block_type, **entry.defaults()}
    if "out" in entry.param_names and data.get("out") is None:
        data["out"] = width
    return data


def empty_spec(name: str = "my-design") -> ArchitectureSpec:
    """A starting point with nothing but a stride-2 stem conv and the classifier head."""
    return load_design({
        "name": name,
        "description": "started empty in the explorer",
        "input": {"channels": 3, "size": 224},
        "num_classes": 1000,
        "stem": [{"type": "conv", "out": 16, "kernel": 3, "stride": 2, "act": "hswish"}],
        "stages": [],
        "head": {"type": "classifier"},
    })


# ----------------------------------------------------------------------------- structure edits


def _blocks_of(data: dict[str, Any], stage: int) -> list[dict[str, Any]]:
    if stage == 0:
        return data["stem"]
    if not 1 <= stage <= len(data["stages"]):
        raise SpecError(f"there is no stage {stage}; the design has {len(data['stages'])} stages")
    return data["stages"][stage - 1]["blocks"]


def add_block(
    spec: ArchitectureSpec, stage: int, position: int, block_type: str, params: dict[str, Any] | None = None
) -> ArchitectureSpec:
    """Insert a ``block_type`` block so that it becomes block ``position`` of ``stage`` (0 = stem).

    Without ``params`` the block gets its defaults and keeps the width that flows in there.
    """
    if block_entry(block_type).category == "head":
        raise SpecError(f"{block_type} is a head block; change the head's parameters instead of adding one")
    data = spec.to_dict()
    blocks = _blocks_of(data, stage)
    if not 1 <= position <= len(blocks) + 1:
        where = "the stem" if stage == 0 else f"stage {stage}"
        raise SpecError(f"{where} has {len(blocks)} blocks; insert at position 1 to {len(blocks) + 1}")
    block = new_block(block_type, channels_before(spec, stage, position))
    if params:
        block.update(params)
    blocks.insert(position - 1, block)
    return load_design(data)


def remove_block(spec: ArchitectureSpec, ref: BlockRef) -> ArchitectureSpec:
    """Remove the block at ``ref``; a stage keeps at least one block (remove the stage instead)."""
    if ref.is_head:
        raise SpecError("head: the head cannot be removed; edit its parameters instead")
    get_entry(spec, ref)
    data = spec.to_dict()
    blocks = _blocks_of(data, ref.stage)
    if ref.stage > 0 and len(blocks) == 1:
        raise SpecError(f"{ref.place}: it is the only block of stage {ref.stage}; remove the stage instead")
    del blocks[ref.block - 1]
    return load_design(data)


def move_block(spec: ArchitectureSpec, ref: BlockRef, offset: int) -> tuple[ArchitectureSpec, BlockRef]:
    """Move the block at ``ref`` by ``offset`` places within its stage; returns (spec, its new ref)."""
    if ref.is_head:
        raise SpecError("head: the head always comes last; it cannot move")
    get_entry(spec, ref)
    data = spec.to_dict()
    blocks = _blocks_of(data, ref.stage)
    target = ref.block + offset
    if not 1 <= target <= len(blocks):
        edge = "first" if offset < 0 else "last"
        raise SpecError(f"{ref.place}: it is already {edge} in its stage; move another block or add a stage")
    blocks.insert(target - 1, blocks.pop(ref.block - 1))
    return load_design(data), BlockRef(ref.stage, target)


def add_stage(spec: ArchitectureSpec, position: int, block_type: str = "dwsep", name: str = "") -> ArchitectureSpec:
    """Insert a stage at ``position`` (1-based) holding one ``block_type`` block that keeps the width."""
    if not 1 <= position <= len(spec.stages) + 1:
        raise SpecError(f"the design has {len(spec.stages)} stages; insert at position 1 to {len(spec.stages) + 1}")
    if block_entry(block_type).category == "head":
        raise SpecError(f"{block_type} is a head block; a stage needs a body block (conv, ir, ...)")
    width = channels_before(spec, position, 1)
    data = spec.to_dict()
    stage = {"name": name or f"stage-{position}", "repeat": 1, "blocks": [new_block(block_type, width)]}
    data["stages"].insert(position - 1, stage)
    return load_design(data)


def remove_stage(spec: ArchitectureSpec, stage: int) -> ArchitectureSpec:
    """Remove stage ``stage`` (1-based) and all its blocks."""
    if not 1 <= stage <= len(spec.stages):
        raise SpecError(f"there is no stage {stage}; the design has {len(spec.stages)} stages")
    data = spec.to_dict()
    del data["stages"][stage - 1]
    return load_design(data)


def set_stage(spec: ArchitectureSpec, stage: int, name: str | None = None, repeat: Any = None) -> ArchitectureSpec:
    """Rename a stage and/or set how many times its block list runs."""
    if not 1 <= stage <= len(spec.stages):
        raise SpecError(f"there is no stage {stage}; the design has {len(spec.stages)} stages")
    data = spec.to_dict()
    st = data["stages"][stage - 1]
    if name is not None:
        st["name"] = str(name)
    if repeat is not None:
        st["repeat"] = whole_number(repeat, f"stage {stage}: repeat")
    return load_design(data)


def whole_number(value: Any, what: str) -> int:
    """``value`` (an int, a whole float such as a number box sends, or text) as an ``int``; else ``SpecError``."""
    if isinstance(value, bool):
        raise SpecError(f"{what} {value} should be a whole number")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise SpecError(f"{what} {value} should be a whole number")
        return int(value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise SpecError(f"{what} {value!r} should be a whole number") from None


def _replace_entry(spec: ArchitectureSpec, ref: BlockRef, block: dict[str, Any]) -> ArchitectureSpec:
    data = spec.to_dict()
    if ref.is_head:
        data["head"] = block
    else:
        _blocks_of(data, ref.stage)[ref.block - 1] = block
    return load_design(data)


def set_block_params(spec: ArchitectureSpec, ref: BlockRef, params: dict[str, Any]) -> ArchitectureSpec:
    """Set the block at ``ref`` to ``params`` (omitted ones take their defaults)."""
    entry = get_entry(spec, ref)
    if isinstance(entry, ParallelSpec):
        raise SpecError(f"{ref.place}: a parallel group; edit its columns in the YAML editor")
    return _replace_entry(spec, ref, {"type": entry.type, **params})


def replace_block_type(spec: ArchitectureSpec, ref: BlockRef, block_type: str) -> ArchitectureSpec:
    """Turn the block at ``ref`` into a ``block_type`` block, keeping every shared setting that fits.

    Shared parameters (``out``, ``kernel``, ``stride``, ``act`` ...) carry over when the new type
    accepts their values; everything else takes the new type's defaults.
    """
    entry = get_entry(spec, ref)
    target = block_entry(block_type)
    if ref.is_head != (target.category == "head"):
        wanted = "a head block (classifier)" if ref.is_head else "a body block (not a head)"
        raise SpecError(f"{ref.place}: {block_type} does not fit here; use {wanted}")
    if ref.is_head:
        width = 0
    else:
        width = channels_before(spec, ref.stage, ref.block)
        if isinstance(entry, BlockSpec) and isinstance(entry.params.get("out"), int):
            width = entry.params["out"]
    block = new_block(block_type, width)
    old = entry.params if isinstance(entry, BlockSpec) else {}
    for name in target.param_names:
        if name in old:
            trial = {**{k: v for k, v in block.items() if k != "type"}, name: old[name]}
            try:
                target.params_model(**trial)
            except ValidationError:  # the old value does not fit the new type: keep the default
                continue
            block[name] = old[name]
    return _replace_entry(spec, ref, block)
