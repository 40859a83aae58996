"""Mutations: one-step edits of a design that keep it valid.

A mutation is addressed by its name, a stage (1-based) and, for block mutations, a block
(1-based position in the stage's written block list). ``apply_mutation`` returns a new,
validated spec or raises ``SpecError`` saying why the mutation does not apply there.
``random_mutation`` draws among every mutation that applies and returns a ``MutationResult``
(the valid new design, and which mutation went where);
``random_architectures`` grows distinct valid designs from the presets (used by latency
calibration, the proxy benchmark and the design search).

Mutations (names as the UI's buttons and the command line use them):

=================  =====  ====================================================================
wider / narrower   stage  every ``out`` in the stage × 1.25 / × 0.8 (multiples of 8)
deeper             stage  one block more: a stride-1 copy of the selected block, else of the stage's
                          last block that keeps its input's shape, right after it (a stage of one
                          block repeated n times: ``repeat`` n + 1). Never a whole stage's copy.
shallower          stage  one block less: the selected, else the last stride-1 width-keeping block
kernel_up / _down  block  kernel 3 -> 5 -> 7 / 7 -> 5 -> 3 (also embed_kernel of a condenser)
expand_up / _down  block  expansion ratio of an inverted residual + 1 / - 1 (1 to 8)
swap_condenser     block  a stride-1, width-keeping conv unit <-> a DC-AC attention condenser
condense_steps     block  attention condenser 1 <-> 2 condensing steps (classic <-> DC-AC)
=================  =====  ====================================================================
"""

from __future__ import annotations

import copy as copy_module
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from blocks import make_divisible

from .design import load_design, load_preset, retarget
from .limits import channels_before, check_size
from .presets import list_presets
from .spec import ArchitectureSpec, ParallelSpec, SpecError, UnitAddress

__all__ = [
    "MUTATIONS",
    "Mutation",
    "MutationResult",
    "apply_mutation",
    "applicable_mutations",
    "describe",
    "random_architectures",
    "random_mutation",
]

CONV_UNITS = ("conv", "dwsep", "ir", "mobileone", "repconv")
KERNELS = (1, 3, 5, 7)


@dataclass(frozen=True)
class Mutation:
    name: str
    label: str
    scope: str  # "stage" or "block"
    description: str


def _scale_widths(data: dict[str, Any], stage: int, factor: float) -> None:
    def scale(block: dict[str, Any]) -> bool:
        if isinstance(block.get("out"), int):
            new = max(8, make_divisible(block["out"] * factor))
            if new == block["out"]:
                new = block["out"] + (8 if factor > 1 else -8)
            block["out"] = max(8, min(4096, new))
            return True
        return False

    changed = False
    for entry in data["stages"][stage - 1]["blocks"]:
        if entry["type"] == "parallel":
            for branch in entry["branches"]:
                changed |= any([scale(b) for b in branch])
        else:
            changed |= scale(entry)
    if not changed:
        raise SpecError(f"stage {stage}: no block with an 'out' width to scale")


def _wider(data: dict[str, Any], stage: int, block: int | None, ctx: dict[str, Any]) -> None:
    _scale_widths(data, stage, 1.25)


def _narrower(data: dict[str, Any], stage: int, block: int | None, ctx: dict[str, Any]) -> None:
    _scale_widths(data, stage, 0.8)


def _unrolled(st: dict[str, Any]) -> list[tuple[int, int, dict[str, Any]]]:
    """The stage's entries with its repeats written out: ``(block, repeat, entry)``, 1-based.

    Copies after the first run at stride 1, as the builder runs them (``explorer.spec.expand_units``).
    """
    out = []
    for r in range(1, st.get("repeat", 1) + 1):
        for b, entry in enumerate(st["blocks"], 1):
            out.append((b, r, entry if r == 1 else _stride_one(entry)))
    return out


def _stride_one(entry: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a written entry (a parallel group's columns too) with every stride set to 1."""
    copy = copy_module.deepcopy(entry)
    inner = [b for branch in copy["branches"] for b in branch] if copy["type"] == "parallel" else [copy]
    for b in inner:
        if "stride" in b:
            b["stride"] = 1
    return copy


def _pick(stage: int, block: int | None, units: list[tuple[int, int, dict[str, Any]]],
          keeps_shape: Callable[[int, int, int], bool], removing: bool) -> int:
    """Index into ``units`` of the block that ``deeper`` copies / ``shallower`` removes.

    The selected ``block`` (its first copy), else the last plain block that keeps its input's shape
    (stride 1, as many channels out as in: the stage's repeatable body unit), else, for ``deeper``
    only, the last plain block.
    """
    if block is not None:
        index = next((i for i, (b, r, _) in enumerate(units) if b == block and r == 1), None)
        if index is None:
            raise SpecError(f"stage {stage}: there is no block {block}; the stage has {len(units)}")
        if units[index][2]["type"] == "parallel":
            raise SpecError(f"stage {stage}, block {block}: a parallel group; select a plain block")
        if removing and not keeps_shape(stage, block, 1):
            raise SpecError(f"stage {stage}, block {block}: it changes the shape (stride or width), so removing it "
                            "would break the blocks after it; select a stride-1 block that keeps its width")
        return index
    plain = [i for i, (_, _, e) in enumerate(units) if e["type"] != "parallel"]
    keeping = [i for i in plain if keeps_shape(stage, units[i][0], units[i][1])]
    if removing and not keeping:
        raise SpecError(f"stage {stage}: no stride-1 block keeps its width, so none can be removed without "
                        "changing the shapes after it; use narrower or edit the stage by hand")
    if not plain:
        raise SpecError(f"stage {stage}: only parallel groups; deeper copies a plain block")
    return (keeping or plain)[-1]


def _deeper(data: dict[str, Any], stage: int, block: int | None, ctx: dict[str, Any]) -> None:
    """One block more: a stride-1 copy of the selected block (else of the stage's last width-keeping one)
    right after it. A stage of one block repeated ``n`` times gets ``repeat: n + 1`` (the same thing)."""
    st = data["stages"][stage - 1]
    repeat = st.get("repeat", 1)
    if repeat > 1 and len(st["blocks"]) == 1 and block in (None, 1) and st["blocks"][0]["type"] != "parallel":
        if repeat >= 64:
            raise SpecError(f"stage {stage}: repeat is already 64, the most allowed")
        st["repeat"] = repeat + 1
        return
    units = _unrolled(st)
    index = _pick(stage, block, units, ctx["keeps_shape"], removing=False)
    entries = [e for _, _, e in units]
    entries.insert(index + 1, _stride_one(units[index][2]))
    st["blocks"] = entries
    st.pop("repeat", None)


def _shallower(data: dict[str, Any], stage: int, block: int | None, ctx: dict[str, Any]) -> None:
    """One block less: the selected block, else the stage's last stride-1 block that keeps its width
    (removing it leaves every shape after it as it was). ``repeat: n`` of one block becomes ``n - 1``."""
    st = data["stages"][stage - 1]
    repeat = st.get("repeat", 1)
    if repeat > 1 and len(st["blocks"]) == 1 and block in (None, 1):
        st["repeat"] = repeat - 1
        if st["repeat"] == 1:
            del st["repeat"]
        return
    units = _unrolled(st)
    if len(units) <= 1:
        raise SpecError(f"stage {stage} has only one block; remove the stage or use narrower instead")
    index = _pick(stage, block, units, ctx["keeps_shape"], removing=True)
    st["blocks"] = [e for i, (_, _, e) in enumerate(units) if i != index]
    st.pop("repeat", None)


def _block(data: dict[str, Any], stage: int, block: int | None) -> dict[str, Any]:
    if block is None:
        raise SpecError(f"stage {stage}: this mutation needs a block number")
    blocks = data["stages"][stage - 1]["blocks"]
    if not 1 <= block <= len(blocks):
        raise SpecError(f"stage {stage}: there is no block {block}; the stage has {len(blocks)}")
    entry = blocks[block - 1]
    if entry["type"] == "parallel":
        raise SpecError(f"stage {stage}, block {block}: a parallel group; mutate the blocks inside its columns")
    return entry


def _kernel_key(entry: dict[str, Any], stage: int, block: int) -> str:
    for key in ("kernel", "embed_kernel"):
        if key in entry:
            return key
    raise SpecError(f"stage {stage}, block {block}: {entry['type']} has no kernel")


def _step_kernel(data: dict[str, Any], stage: int, block: int | None, up: bool) -> None:
    entry = _block(data, stage, block)
    key = _kernel_key(entry, stage, block or 0)
    k = entry[key]
    options = [x for x in KERNELS if (x > k if up else x < k) and x >= 3]
    if entry["type"] in ("mobileone", "repconv") or k == 1:
        raise SpecError(f"stage {stage}, block {block}: kernel {k} of {entry['type']} is kept fixed")
    if not options:
        raise SpecError(f"stage {stage}, block {block}: kernel {k} is already the {'largest' if up else 'smallest'}")
    entry[key] = options[0] if up else options[-1]


def _kernel_up(data: dict[str, Any], stage: int, block: int | None, ctx: dict[str, Any]) -> None:
    _step_kernel(data, stage, block, up=True)


def _kernel_down(data: dict[str, Any], stage: int, block: int | None, ctx: dict[str, Any]) -> None:
    _step_kernel(data, stage, block, up=False)


def _step_expand(data: dict[str, Any], stage: int, block: int | None, delta: float) -> None:
    entry = _block(data, stage, block)
    if entry["type"] != "ir":
        raise SpecError(f"stage {stage}, block {block}: only inverted residuals (ir) have an expansion ratio")
    new = round(entry["expand"] + delta, 2)
    if not 1.0 <= new <= 8.0:
        raise SpecError(f"stage {stage}, block {block}: expansion {entry['expand']} cannot go to {new}; keep 1 to 8")
    entry["expand"] = new


def _expand_up(data: dict[str, Any], stage: int, block: int | None, ctx: dict[str, Any]) -> None:
    _step_expand(data, stage, block, 1.0)


def _expand_down(data: dict[str, Any], stage: int, block: int | None, ctx: dict[str, Any]) -> None:
    _step_expand(data, stage, block, -1.0)


def _swap_condenser(data: dict[str, Any], stage: int, block: int | None, ctx: dict[str, Any]) -> None:
    entry = _block(data, stage, block)
    blocks = data["stages"][stage - 1]["blocks"]
    assert block is not None  # _block refuses None
    index = block - 1
    in_channels = ctx["in_channels"](stage, block)
    if entry["type"] == "attention_condenser":
        blocks[index] = {"type": "dwsep", "out": in_channels, "kernel": 3, "stride": 1}
        return
    if entry["type"] not in CONV_UNITS:
        raise SpecError(f"stage {stage}, block {block}: {entry['type']} is not a conv unit or an attention condenser")
    if entry.get("stride", 1) != 1 or entry.get("out") != in_channels:
        raise SpecError(
            f"stage {stage}, block {block}: only a stride-1 unit that keeps its width ({in_channels} channels) "
            "can become an attention condenser (which keeps shape)"
        )
    blocks[index] = {"type": "attention_condenser", "condense_steps": 2}


def _condense_steps(data: dict[str, Any], stage: int, block: int | None, ctx: dict[str, Any]) -> None:
    entry = _block(data, stage, block)
    if entry["type"] != "attention_condenser":
        raise SpecError(f"stage {stage}, block {block}: not an attention condenser")
    entry["condense_steps"] = 1 if entry.get("condense_steps", 2) == 2 else 2


_Op = Callable[[dict[str, Any], int, "int | None", dict[str, Any]], None]

MUTATIONS: dict[str, Mutation] = {
    m.name: m
    for m in (
        Mutation("wider", "Wider", "stage", "every width in the stage × 1.25"),
        Mutation("narrower", "Narrower", "stage", "every width in the stage × 0.8"),
        Mutation("deeper", "Deeper", "stage", "one block more: a stride-1 copy of the selected (or last "
                 "width-keeping) block"),
        Mutation("shallower", "Shallower", "stage", "one block less: the selected (or last stride-1, "
                 "width-keeping) block"),
        Mutation("kernel_up", "Kernel +", "block", "kernel 3 -> 5 -> 7"),
        Mutation("kernel_down", "Kernel −", "block", "kernel 7 -> 5 -> 3"),
        Mutation("expand_up", "Expansion +", "block", "inverted-residual expansion + 1"),
        Mutation("expand_down", "Expansion −", "block", "inverted-residual expansion − 1"),
        Mutation("swap_condenser", "Conv ↔ DC-AC", "block", "swap a width-keeping conv unit and a DC-AC"),
        Mutation("condense_steps", "Condense 1 ↔ 2", "block", "classic attention condenser <-> DC-AC"),
    )
}

_OPS: dict[str, _Op] = {
    "wider": _wider,
    "narrower": _narrower,
    "deeper": _deeper,
    "shallower": _shallower,
    "kernel_up": _kernel_up,
    "kernel_down": _kernel_down,
    "expand_up": _expand_up,
    "expand_down": _expand_down,
    "swap_condenser": _swap_condenser,
    "condense_steps": _condense_steps,
}


def apply_mutation(spec: ArchitectureSpec, name: str, stage: int, block: int | None = None) -> ArchitectureSpec:
    """Apply mutation ``name`` at ``stage`` (and ``block``); the result is validated.

    ``deeper`` and ``shallower`` are stage mutations that also take a ``block``: the one to copy or remove.
    """
    if name not in _OPS:
        raise SpecError(f"unknown mutation {name!r}; use one of {', '.join(MUTATIONS)}")
    if not 1 <= stage <= len(spec.stages):
        raise SpecError(f"there is no stage {stage}; the design has {len(spec.stages)} stages")
    data = spec.to_dict()
    shapes: dict[UnitAddress, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def in_channels(s: int, b: int) -> int:  # walked only when a mutation asks (swap_condenser)
        return channels_before(spec, s, b)

    def keeps_shape(s: int, b: int, r: int) -> bool:  # the meta-device walk, once, when a mutation asks
        if not shapes:
            shapes.update({row.unit.address: (row.in_shape, row.out_shape) for row in check_size(spec)})
        in_shape, out_shape = shapes[UnitAddress(s, b, r)]
        return in_shape == out_shape

    _OPS[name](data, stage, block, {"in_channels": in_channels, "keeps_shape": keeps_shape})
    return load_design(data)


def applicable_mutations(spec: ArchitectureSpec) -> list[tuple[str, int, int | None]]:
    """Every (mutation, stage, block) address that names an existing stage or plain block."""
    out: list[tuple[str, int, int | None]] = []
    for s, stage in enumerate(spec.stages, 1):
        for name, m in MUTATIONS.items():
            if m.scope == "stage":
                out.append((name, s, None))
            else:
                out += [(name, s, b) for b, e in enumerate(stage.blocks, 1) if not isinstance(e, ParallelSpec)]
    return out


def describe(name: str, stage: int, block: int | None) -> str:
    """``Wider at stage 2`` / ``Kernel + at stage 2, block 1``: a mutation in words."""
    where = f"stage {stage}" + (f", block {block}" if block else "")
    return f"{MUTATIONS[name].label} at {where}"


@dataclass(frozen=True)
class MutationResult:
    """A mutation that was applied: the new design, which mutation, and where (``block`` None: a stage mutation)."""

    spec: ArchitectureSpec
    name: str
    stage: int
    block: int | None

    @property
    def description(self) -> str:
        return describe(self.name, self.stage, self.block)


def random_mutation(spec: ArchitectureSpec, rng: random.Random, max_tries: int = 64) -> MutationResult:
    """A random mutation that applies and keeps the design valid."""
    candidates = applicable_mutations(spec)
    rng.shuffle(candidates)
    for name, stage, block in candidates[:max_tries]:
        try:
            return MutationResult(apply_mutation(spec, name, stage, block), name, stage, block)
        except SpecError:
            continue
    raise SpecError("no mutation keeps this design valid; edit it by hand")


def random_architectures(
    n: int, seed: int = 0, input_size: int | None = None, steps: int = 3, bases: list[str] | None = None
) -> list[ArchitectureSpec]:
    """``n`` distinct valid designs: presets, each moved by ``steps`` random mutations.

    With ``input_size`` every design is set to that square input first (designs that do not fit
    it are skipped). Deterministic for a given seed.
    """
    rng = random.Random(seed)
    names = bases or list_presets()
    starts: list[ArchitectureSpec] = []
    for name in names:
        base = load_preset(name)
        try:
            starts.append(retarget(base, input_size=input_size) if input_size else base)
        except SpecError:
            continue
    if not starts:
        raise SpecError(f"no preset fits input size {input_size}; use a larger input")
    designs: dict[str, ArchitectureSpec] = {}
    attempts = 0
    while len(designs) < n and attempts < 20 * n:
        attempts += 1
        spec = starts[attempts % len(starts)]
        try:
            for _ in range(steps):
                spec = random_mutation(spec, rng).spec
        except SpecError:
            continue
        spec = spec.model_copy(update={"name": f"{spec.name}-m{len(designs) + 1}"})
        key = spec.model_dump_json(exclude={"name"})
        designs.setdefault(key, spec)
    return list(designs.values())
