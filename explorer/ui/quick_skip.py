"""Gradio's ``gr.skip()``, made free: an output left as it is costs nothing on the server.

Gradio 6 post-processes every output an event names, skipped or not: for a ``gr.skip()`` it
builds a new copy of the component (``Component.__init__`` with the original arguments) and its
config, then sends ``{"__type__": "update"}``, which the page ignores. An edit names about 60
outputs (the form alone has 33 slot components) and skips most of them in one of its two
phases; at about 1 ms each on this machine that was the largest single cost of an edit on the
server's one Python thread.

``install()`` wraps ``gradio.Blocks.postprocess_data``: the outputs whose value is exactly
``gr.skip()`` (and that are not states) are answered ``{"__type__": "update"}`` directly, and
Gradio post-processes only the others, as before. What the page receives is identical (the same
reply, value by value); the session's copy of a skipped component is not rebuilt, which changes
nothing since a skip never changes its arguments. If Gradio's method does not look as expected
(another major version), nothing is patched and Gradio works as it always did.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import gradio as gr
from gradio.blocks import Block, Blocks, convert_component_dict_to_list

__all__ = ["install", "installed"]

_BARE_SKIP = {"__type__": "update"}
_ORIGINAL = Blocks.postprocess_data
_EXPECTED = ["self", "block_fn", "predictions", "state"]


def _is_bare_skip(value: Any) -> bool:
    return type(value) is dict and value == _BARE_SKIP


async def _postprocess_data(self: Blocks, block_fn: Any, predictions: Any, state: Any) -> list[Any]:
    """``Blocks.postprocess_data`` for the outputs that are not a bare ``gr.skip()``; those answered as Gradio would."""
    outputs = list(block_fn.outputs)
    values = predictions
    if isinstance(values, dict) and values and all(isinstance(k, Block) for k in values):
        values = convert_component_dict_to_list(outputs, values)
    if (block_fn.batch or getattr(block_fn, "is_validator_function", False) or len(outputs) < 2
            or not isinstance(values, (list, tuple)) or len(values) != len(outputs)):
        return await _ORIGINAL(self, block_fn, predictions, state)
    keep = [i for i, (block, value) in enumerate(zip(outputs, values, strict=True))
            if getattr(block, "stateful", False) or not _is_bare_skip(value)]
    if len(keep) == len(outputs):
        return await _ORIGINAL(self, block_fn, list(values), state)
    result: list[Any] = [dict(_BARE_SKIP) for _ in outputs]
    if not keep:
        return result
    narrowed = copy.copy(block_fn)
    narrowed.outputs = [outputs[i] for i in keep]
    kept = [values[i] for i in keep]
    done = await _ORIGINAL(self, narrowed, kept if len(keep) > 1 else kept[0], state)
    for i, value in zip(keep, done, strict=True):
        result[i] = value
    return result


def installed() -> bool:
    """Whether skips are answered directly (``install`` ran and Gradio looked as expected)."""
    return Blocks.postprocess_data is _postprocess_data


def install() -> bool:
    """Answer bare ``gr.skip()`` outputs without rebuilding their components; ``False`` if Gradio differs."""
    if installed():
        return True
    params = list(inspect.signature(_ORIGINAL).parameters)
    if params != _EXPECTED or not inspect.iscoroutinefunction(_ORIGINAL) or gr.skip() != _BARE_SKIP:
        return False
    Blocks.postprocess_data = _postprocess_data  # type: ignore[method-assign]
    return True
