"""One registry of blocks: name -> class + parameter schema.

The spec validator, the builder and the UI palette all read this list, so a block
registered here is immediately usable everywhere (timm's model registry, applied to
blocks).

A block is a plain ``torch.nn.Module`` whose constructor is
``cls(in_channels, <context args>, **params)``. Its parameter schema is derived from
that constructor's signature: every parameter after ``in_channels`` (and after the
context arguments such as ``num_classes`` that the builder supplies) becomes a field of
a pydantic model, with the annotation (``Annotated[int, Field(ge=1)]``, ``Literal``...)
and the default taken verbatim. There is therefore exactly one place where a block's
parameters, their ranges and their defaults are written: its ``__init__``. Two rules are added
here, once for every block: a number parameter (``int``, ``float`` or a ``Literal`` of numbers)
refuses ``true``/``false`` (pydantic's lax mode would read ``true`` as 1), and a text parameter
holds at most ``MAX_TEXT_CHARS`` characters.

Every block sets ``self.out_channels`` so that the builder can chain blocks.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import torch.nn as nn
from pydantic import BaseModel, BeforeValidator, ConfigDict, create_model
from pydantic_core import PydanticCustomError

__all__ = ["BlockEntry", "register_block", "get_block", "list_blocks", "BLOCK_CATEGORIES"]

BLOCK_CATEGORIES = ("conv", "attention", "transformer", "downsample", "head")

#: constructor arguments that the builder supplies from context, never from the spec
CONTEXT_ARGS = ("in_channels", "num_classes")

#: the longest text a block parameter takes
MAX_TEXT_CHARS = 80


@dataclass(frozen=True)
class BlockEntry:
    """What the registry knows about one block type."""

    name: str
    cls: type[nn.Module]
    params_model: type[BaseModel]
    category: str
    summary: str
    context_args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def param_names(self) -> list[str]:
        return list(self.params_model.model_fields)

    def defaults(self) -> dict[str, Any]:
        """Default value of every parameter that has one."""
        return {
            name: f.default
            for name, f in self.params_model.model_fields.items()
            if not f.is_required()
        }

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of the parameters (types, ranges, choices, descriptions)."""
        return self.params_model.model_json_schema()

    def build(self, in_channels: int, params: dict[str, Any], **context: Any) -> nn.Module:
        """Construct the module; ``params`` must already be validated."""
        kwargs = {k: v for k, v in context.items() if k in self.context_args}
        return self.cls(in_channels, **kwargs, **params)


_REGISTRY: dict[str, BlockEntry] = {}


def _leaf_types(hint: Any) -> set[Any]:
    """The plain types a hint admits: ``Annotated[int, ...] | None`` -> {int, NoneType};
    a ``Literal`` gives the types of its values (``Literal[1, 2]`` -> {int})."""
    origin = get_origin(hint)
    if origin is Annotated:
        return _leaf_types(get_args(hint)[0])
    if origin is Literal:
        return {type(v) for v in get_args(hint)}
    if get_args(hint):  # a union
        return set().union(*(_leaf_types(a) for a in get_args(hint)))
    return {hint}


def _guarded(hint: Any) -> Any:
    """``hint`` plus the registry's rules: numbers refuse true/false, text is at most ``MAX_TEXT_CHARS``."""
    leaves = _leaf_types(hint)
    number = None if bool in leaves else "float_type" if float in leaves else "int_type" if int in leaves else None
    text = str in leaves

    def guard(value: Any) -> Any:
        if number and isinstance(value, bool):
            raise PydanticCustomError(number, "Input should be a number, not true or false")
        if text and isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
            raise PydanticCustomError(
                "string_too_long", "String should have at most {max_length} characters", {"max_length": MAX_TEXT_CHARS}
            )
        return value

    return Annotated[hint, BeforeValidator(guard)] if number or text else hint


def _params_model_from_signature(name: str, cls: type[nn.Module]) -> tuple[type[BaseModel], tuple[str, ...]]:
    signature = inspect.signature(cls.__init__)
    hints = get_type_hints(cls.__init__, include_extras=True)
    fields: dict[str, Any] = {}
    context: list[str] = []
    for pname, param in list(signature.parameters.items())[1:]:  # skip self
        if pname in CONTEXT_ARGS:
            context.append(pname)
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"block {name!r}: *args/**kwargs are not allowed in a block constructor")
        if pname not in hints:
            raise TypeError(f"block {name!r}: parameter {pname!r} needs a type annotation")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (_guarded(hints[pname]), default)
    model_name = "".join(part.capitalize() for part in name.split("_")) + "Params"
    model = create_model(
        model_name, __config__=ConfigDict(extra="forbid", frozen=True), **fields
    )
    return model, tuple(context)


def register_block(name: str, category: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make a block discoverable by ``name``."""
    if category not in BLOCK_CATEGORIES:
        raise ValueError(f"category {category!r} is not one of {BLOCK_CATEGORIES}")

    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"block type {name!r} is registered twice")
        model, context = _params_model_from_signature(name, cls)
        doc = inspect.getdoc(cls) or ""
        _REGISTRY[name] = BlockEntry(
            name=name,
            cls=cls,
            params_model=model,
            category=category,
            summary=doc.splitlines()[0] if doc else name,
            context_args=context,
        )
        cls.block_type = name  # type: ignore[attr-defined]
        return cls

    return decorate


def get_block(name: str) -> BlockEntry:
    """Look a block type up; the error lists the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown block type {name!r}; known types: {known}") from None


def list_blocks(category: str | None = None) -> list[BlockEntry]:
    """Registered blocks, in registration order, optionally of one category."""
    return [e for e in _REGISTRY.values() if category is None or e.category == category]
