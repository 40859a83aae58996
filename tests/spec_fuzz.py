"""Hostile and random specs, shared by the fuzz tests (``test_hostile_specs.py``) and the nightly-size
fuzz benchmark (``benchmarks/fuzz_specs.py``).

- ``HOSTILE``: fixed cases from a hostile-input review (issue 10), each with the words its refusal
  must contain: nesting, huge numbers, alias bombs, duplicate keys, ``true`` for numbers, huge
  strings, block counts hidden in parallel columns, and valid specs whose work explodes.
- ``random_spec(rng)``: a spec drawn from the block registry's own schemas (stems, stages,
  blocks, parallel groups, parameters), mostly in range and small, with odd values mixed in,
  given as a mapping, YAML text or JSON text.
- ``mutation_chain(rng, preset)``: a preset moved by random mutations (``explorer.mutate``),
  some of them at addresses that do not exist.
- ``check_case(source)``: the property: ``load_design`` either refuses with one bounded line
  (``SpecError``) or gives a spec that ``analyze`` counts and that round-trips through YAML.
- ``memory_bound()``: an address-space cap around a case, so that a blow-up fails as
  ``MemoryError`` instead of taking the machine.

Every draw goes through the ``random.Random`` it is given: Hypothesis passes one it controls
(``st.randoms()``), so it can replay and shrink a failing case; the benchmark passes a seeded one.
"""

from __future__ import annotations

import json
import random
import re
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from blocks import list_blocks
from explorer.analysis import analyze
from explorer.design import load_design, load_preset
from explorer.mutate import MUTATIONS, apply_mutation, random_mutation
from explorer.spec import MAX_MESSAGE_CHARS, ArchitectureSpec, SpecError, dump_spec, expand_units

__all__ = ["HOSTILE", "Outcome", "check_case", "memory_bound", "mutation_chain", "random_spec"]

#: odd values put where a parameter or a field is expected
ODD_VALUES: list[Any] = [
    True, False, None, -1, 0, 2.5, 10**18, -(10**18), "3", "", "x" * 200, [], [3, 3], {"k": 1}, 1e300,
]
ODDITY = 0.08  # how often a value, key or type is odd
SIZES = [8, 12, 16, 24, 32, 48, 64]
ODD_SIZES: list[Any] = [1, 4, 7, 100, 1024, 2048, [16, 48], [64, 8], [16], True, "64"]


# ----------------------------------------------------------------------------- the property


@dataclass(frozen=True)
class Outcome:
    """How one case ended: ``valid`` (analysed) or ``refused`` (our SpecError), with the time it took."""

    kind: str
    message: str
    seconds: float


def check_case(source: Any) -> Outcome:
    """Load ``source`` as ``load_design`` does; a valid design is analysed and round-tripped.

    Passes when the design is refused with one ``SpecError`` line of at most ``MAX_MESSAGE_CHARS``
    (plus its ``… and N more problems`` note), or when it is valid, ``analyze`` gives one row per
    unit, and ``load_design(dump_spec(spec)) == spec``. Any other exception propagates.
    """
    start = time.perf_counter()
    try:
        spec = load_design(source)
    except SpecError as exc:
        message = str(exc)
        assert message, "an empty SpecError"
        assert "\n" not in message and "Traceback" not in message, message[:300]
        assert len(message) <= MAX_MESSAGE_CHARS + 40, f"a {len(message)}-character message: {message[:300]}"
        return Outcome("refused", message, time.perf_counter() - start)
    _check_valid(spec)
    return Outcome("valid", spec.name, time.perf_counter() - start)


def _check_valid(spec: ArchitectureSpec) -> None:
    result = analyze(spec)
    assert len(result.blocks) == len(expand_units(spec))
    assert result.params > 0 and result.macs >= 0 and result.peak_activation_bytes > 0
    assert load_design(dump_spec(spec)) == spec


def _vm_size() -> int:
    """This process's address space in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmSize in /proc/self/status")


@contextmanager
def memory_bound(extra_bytes: int = 3 << 30) -> Iterator[None]:
    """Cap the address space at its current size plus ``extra_bytes`` while the block runs.

    A case that tries to allocate past it fails with ``MemoryError`` (or torch's allocation error)
    instead of exhausting the machine. Where ``/proc`` is missing the block runs uncapped.
    """
    try:
        size = _vm_size()
    except OSError:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = size + extra_bytes if hard == resource.RLIM_INFINITY else min(size + extra_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def peak_rss_mib() -> float:
    """The most resident memory this process has held so far, in MiB (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- hostile files


def _base(stem: list[dict[str, Any]], stages: list[dict[str, Any]] | None = None, size: int = 64) -> dict[str, Any]:
    return {"name": "hostile", "input": {"channels": 3, "size": size}, "num_classes": 10, "stem": stem,
            "stages": stages or [], "head": {"type": "classifier"}}


def _alias_bomb(levels: int = 12, fan: int = 10) -> str:
    """The billion laughs: each level an alias list of the one before, ``fan ** levels`` leaves."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels)]
    return "\n".join([*lines, "name: bomb", f"description: *a{levels - 1}", ""])


def _one(stem_block: dict[str, Any], size: int, block: dict[str, Any]) -> dict[str, Any]:
    return _base([stem_block], [{"blocks": [block]}], size=size)


#: (label, source, words the refusal must contain); sources are text (as files arrive) or mappings
HOSTILE: list[tuple[str, Any, str]] = [
    ("nesting 600 deep (YAML)", "name: x\nstem: " + "[" * 600 + "]" * 600 + "\n", "nests deeper than 32 levels"),
    ("nesting 600 deep (JSON)", '{"name": "x", "stem": ' + '{"a": ' * 600 + "1" + "}" * 601, "nests deeper than"),
    ("5000-digit integer", "name: x\nnum_classes: " + "9" * 5000 + "\n", "has 5000 digits"),
    ("22-digit JSON integer", '{"name": "x", "num_classes": 1234567890123456789012}', "has 22 digits"),
    ("infinite float", "name: x\nhead: {type: classifier, dropout: .inf}\n", "is not a finite number"),
    ("alias bomb", _alias_bomb(), "once its aliases are expanded"),
    ("alias inside its own anchor", "name: x\nstem: &s [{type: conv, out: 8}, *s]\n", "inside its own anchor"),
    ("2000 aliases", "s: &s {type: se}\nname: x\nstages: [{blocks: [" + ", ".join(["*s"] * 2000) + "]}]\n",
     "more than 1024 aliases"),
    ("duplicate key (YAML)", "name: x\nstem: [{type: conv, out: 16, out: 4096}]\n", "the key 'out' is given twice"),
    ("duplicate key (JSON)", '{"name": "a", "num_classes": 10, "name": "b"}', "the key 'name' is given twice"),
    ("true as channels", _base([{"type": "conv", "out": True}]), "stem, block 1: out true should be a whole number"),
    ("true as kernel", _base([{"type": "conv", "out": 8, "kernel": True}]), "kernel true should be a whole number"),
    ("true as stride", _base([{"type": "conv", "out": 8, "stride": True}]), "stride true should be a whole number"),
    ("true as repeat", _base([], [{"repeat": True, "blocks": [{"type": "se"}]}]),
     "stage 1: repeat true should be a whole number"),
    ("true as classes", {**_base([]), "num_classes": True}, "num_classes true should be a whole number"),
    ("true as input channels", {**_base([]), "input": {"channels": True}}, "channels true should be a whole number"),
    ("true as a literal number", _base([], [{"blocks": [{"type": "attention_condenser", "condense_steps": True}]}]),
     "condense_steps true should be a whole number"),
    ("true as a ratio", _base([{"type": "conv", "out": 8}], [{"blocks": [{"type": "ir", "out": 8, "expand": True}]}]),
     "expand true should be a number"),
    ("1 MB description", "name: x\ndescription: " + "d" * 1_000_000 + "\n", "description has 1000000 characters"),
    ("100 kB stage name", _base([], [{"name": "s" * 100_000, "blocks": [{"type": "se"}]}]),
     "stage 1: name has 100000 characters"),
    ("100 kB block type", _base([{"type": "t" * 100_000}]), "type has 100000 characters; use at most 40"),
    ("100 kB unknown key", _base([{"type": "conv", "out": 8, "k" * 100_000: 1}]), "unknown parameter 'kkkk"),
    ("100 kB bad value", _base([{"type": "conv", "out": "o" * 100_000}]), 'out "oooo'),
    ("5000 problems", _base([{"type": "conv", "out": 8, "kernel": "k" * 1000}] * 5000), "the limit is 512"),
    ("500 problems", _base([{"type": "conv", "out": 8, "kernel": "k" * 1000}] * 500), "more problems"),
    ("2 branches × 5000 blocks, 150 kB of JSON",
     json.dumps(_base([], [{"blocks": [{"type": "parallel", "branches": [[{"type": "se"}] * 5000] * 2}]}])),
     "the design has 10000 blocks"),
    ("64 repeats of a parallel group of 2 × 4",  # 1 + 64 × 8 blocks: one too many
     _base([{"type": "conv", "out": 8}], [{"repeat": 64, "blocks": [{"type": "parallel",
                                                                      "branches": [[{"type": "se"}] * 4] * 2}]}]),
     "the design has 513 blocks"),
    ("9 branches", _base([], [{"blocks": [{"type": "parallel", "branches": [[{"type": "se"}]] * 9}]}]),
     "branches has 9 item(s); give at most 8"),
    ("17 blocks in a branch", _base([], [{"blocks": [{"type": "parallel", "branches": [[{"type": "se"}] * 17] * 2}]}]),
     "branch 1 has 17 blocks; a column holds at most 16"),
    ("MobileViT patch 1, width 1024 at 1024²",
     _one({"type": "conv", "out": 16, "kernel": 1}, 1024, {"type": "mobilevit", "dim": 1024, "heads": 4, "patch": 1}),
     "stage 1, block 1: a 1048576×1048576 tensor inside it"),
    ("inverted residual 1024 × 8 at 362²",
     _one({"type": "conv", "out": 1024, "kernel": 1}, 362, {"type": "ir", "out": 1024, "expand": 8}),
     "stage 1, block 1: a 8192×362×362 tensor inside it"),
    ("128→128 k11 conv at 1024²",
     _one({"type": "conv", "out": 128, "kernel": 1}, 1024, {"type": "conv", "out": 128, "kernel": 11}),
     "stage 1, block 1: the design passes 20 GMACs here"),
    ("elementwise work at 1024²",
     _base([{"type": "conv", "out": 120, "kernel": 1}], [{"blocks": [{"type": "se"}] * 8}], size=1024),
     "M values in one pass here"),
    ("12 distinct 12-layer transformers",
     _base([{"type": "conv", "out": 32, "stride": 2}],
           [{"blocks": [{"type": "mobilevit", "dim": 32 + 8 * i, "depth": 12, "heads": 4} for i in range(12)]}]),
     "the design's distinct blocks run more than 2000 operations"),
    ("over 1 MiB", "name: x\n# " + "c" * (1 << 20) + "\n", "larger than 1024 KiB"),
]


# ----------------------------------------------------------------------------- random specs


@cache
def _schemas() -> dict[str, tuple[dict[str, Any], frozenset[str], str]]:
    """block type -> (JSON schema of each parameter, required parameters, category)."""
    out = {}
    for entry in list_blocks():
        schema = entry.json_schema()
        out[entry.name] = (schema["properties"], frozenset(schema.get("required", [])), entry.category)
    return out


#: values that real designs use, drawn for these parameters most of the time (a kernel is odd,
#: heads divide dim, groups divide widths), so that about half of the clean specs are valid
USUAL: dict[str, list[Any]] = {
    "out": [8, 16, 24, 32, 48], "kernel": [1, 3, 3, 5, 7], "embed_kernel": [1, 3, 5], "groups": [0, 1, 1, 2],
    "embed_groups": [0, 1], "dim": [16, 32, 48, 64], "heads": [1, 2, 4], "depth": [1, 2], "hidden": [0, 0, 32],
    "branches": [1, 2, 3], "stride": [1, 1, 2],
}


class _Draw:
    """Draws for one spec; ``oddity`` is how often a value, key or type is odd (0 for a clean spec)."""

    def __init__(self, rng: random.Random, oddity: float, most: int) -> None:
        self.rng, self.oddity, self.most = rng, oddity, most  # most: stages, blocks a stage, repeats

    def odd(self) -> bool:
        return self.rng.random() < self.oddity

    def value(self, name: str, schema: dict[str, Any]) -> Any:
        """A value for parameter ``name``: a usual one, any in the schema's range (rarely), or odd."""
        rng = self.rng
        if self.odd():
            return rng.choice(ODD_VALUES)
        if "anyOf" in schema:
            schema = rng.choice(schema["anyOf"])
        if "enum" in schema:
            return rng.choice(schema["enum"])
        kind = schema.get("type")
        if kind == "integer":
            if name in USUAL and rng.random() < 0.9:
                return rng.choice(USUAL[name])
            low, high = schema.get("minimum", 0), schema.get("maximum", 64)
            return rng.randint(low, high) if rng.random() < 0.3 else rng.randint(low, min(high, low + 47))
        if kind == "number":
            low = schema.get("minimum", schema.get("exclusiveMinimum", 0.0))
            high = schema.get("maximum", schema.get("exclusiveMaximum", 1.0))
            return round(rng.uniform(low, high), 2)
        if kind == "boolean":
            return rng.random() < 0.5
        return None

    def block(self, head: bool = False) -> dict[str, Any]:
        rng = self.rng
        names = [n for n, (_, _, category) in _schemas().items() if (category == "head") == head]
        name = rng.choice(names)
        props, required, _ = _schemas()[name]
        block: dict[str, Any] = {"type": name}
        for pname, schema in props.items():
            if pname in required or rng.random() < 0.4:
                block[pname] = self.value(pname, schema)
        if self.odd():
            block[rng.choice(["kernal", "outs", "x" * 100])] = 1
        if self.odd() and self.odd():
            block["type"] = rng.choice(["convv", "parallel", "classifier", "", 3, None])
        return block

    def entry(self) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < 0.8:
            return self.block()
        count = rng.choice([0, 1, 9]) if self.odd() else rng.choice([2, 2, 3])
        branches = [[self.block() for _ in range(rng.randint(1, 2))] for _ in range(count)]
        merge = rng.choice(ODD_VALUES) if self.odd() else rng.choice(["add", "concat"])
        if merge == "add":  # equal widths, so that the columns can be summed
            width = rng.choice(USUAL["out"])
            for block in (b for branch in branches for b in branch if "out" in b):
                block["out"] = width
        return {"type": "parallel", "merge": merge, "branches": branches}

    def stage(self, index: int) -> dict[str, Any]:
        rng = self.rng
        blocks = [self.entry() for _ in range(rng.randint(1, self.most))]
        stage: dict[str, Any] = {"name": f"s{index}", "blocks": blocks}
        if rng.random() < 0.7:
            stage["repeat"] = rng.choice([0, 64, 65, True, 2.0, "2"]) if self.odd() else rng.randint(1, self.most - 1)
        return stage


def random_spec(rng: random.Random, most: int = 3) -> dict[str, Any] | str:
    """A random spec: clean (half of them) or odd in places; a mapping (60 %), YAML (20 %) or JSON text (20 %).

    ``most`` bounds the stages, the blocks of a stage and (less one) its repeat: the suite's 3 keeps
    an example to a few seconds of analysis; the benchmark draws larger designs too.
    """
    draw = _Draw(rng, 0.0 if rng.random() < 0.5 else ODDITY, most)
    data: dict[str, Any] = {
        "name": rng.choice(["", "n" * 200, 7]) if draw.odd() else "fuzz",
        "input": {"channels": rng.randint(1, 4), "size": rng.choice(ODD_SIZES) if draw.odd() else rng.choice(SIZES)},
        "num_classes": rng.randint(1, 20),
        "stem": [draw.block() for _ in range(rng.randint(0, 2))],
        "stages": [draw.stage(i) for i in range(1, rng.randint(0, most) + 1)],
        "head": draw.block() if draw.odd() else draw.block(head=True),
    }
    if draw.odd():  # a field missing, odd or unknown
        key = rng.choice(list(data))
        if rng.random() < 0.5:
            del data[key]
        else:
            data[key if rng.random() < 0.7 else "stagez"] = rng.choice(ODD_VALUES)
    form = rng.random()
    if form < 0.6:
        return data
    if form < 0.8:
        text = yaml.safe_dump(data, sort_keys=False)
        if draw.odd():
            text += rng.choice(["name: again\n", "num_classes: 123456789012345678901\n", "stem: &a [*a]\n"])
        return text
    text = json.dumps(data)
    if draw.odd():
        tails = [', "name": "again"}', ', "num_classes": 1e999}', ', "x": ' + "[" * 40 + "]" * 40 + "}"]
        text = text[:-1] + rng.choice(tails)
    return text


# ----------------------------------------------------------------------------- mutation chains


def mutation_chain(rng: random.Random, preset: str, steps: int = 3) -> Iterator[ArchitectureSpec | SpecError]:
    """``steps`` random mutations of ``preset``, each from the last valid design.

    Half are ``random_mutation`` (always valid or refused as a whole), half ``apply_mutation`` at a
    drawn address that may not exist; yields each new design or the ``SpecError`` refusing it.
    """
    spec = load_preset(preset)
    for _ in range(steps):
        try:
            if rng.random() < 0.5:
                spec = random_mutation(spec, rng).spec
            else:
                name = rng.choice(list(MUTATIONS))
                stage = rng.randint(0, len(spec.stages) + 1)
                widest = max((len(s.blocks) for s in spec.stages), default=0)
                block = rng.choice([None, *range(0, widest + 2)])
                spec = apply_mutation(spec, name, stage, block)
        except SpecError as exc:
            yield exc
            continue
        yield spec


def check_mutation(step: ArchitectureSpec | SpecError) -> Outcome:
    """``check_case`` for one step of a mutation chain (a refusal is checked the same way)."""
    start = time.perf_counter()
    if isinstance(step, SpecError):
        message = str(step)
        assert message and "\n" not in message and len(message) <= MAX_MESSAGE_CHARS + 40, message[:300]
        return Outcome("refused", message, time.perf_counter() - start)
    _check_valid(step)
    return Outcome("valid", step.name, time.perf_counter() - start)


def reason(message: str) -> str:
    """A refusal's kind, for counting: the message with places, numbers and quoted values blanked."""
    text = message.split("; ")[0]
    text = re.sub(r"^(stem|stage \d+|head|input|line \d+)[^:]*: ", "", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "…", text)
    return re.sub(r"\d[\d.,×]*", "N", text)[:90]
