"""Memory traffic of one unit: elements of weights read, activations read and activations written.

Counted per kernel of the unit's deployed forward (eval mode, re-parameterisable blocks folded),
batch 1, on the meta device (shapes only, nothing computed). A kernel is a torch function as the
Python code calls it (``F.conv2d``, ``F.relu``, ``x * y``, ``F.scaled_dot_product_attention`` as
one fused kernel), recorded on top of ``analysis``'s fast meta counter (``unit_count.MetaCount``);
a unit calling a function that counter does not know is recorded op by op at the ATen level
instead (a ``TorchDispatchMode``: attention then splits into its matmuls and softmax). Rules:

- an op reads each of its tensor inputs once and writes its result once (auxiliary outputs,
  such as max-pooling's indices or a BatchNorm's saved statistics, are not written at inference);
  inputs that are the unit's parameters or buffers are *weights*, every other tensor is an
  *activation* (the unit's input, intermediate results, constants made inside ``forward``);
- view ops (reshape, flatten, unsqueeze, ...: the output aliases the input), dropout (eval) and
  tensor factories (allocations) move nothing; a view of a weight is a weight;
- a BatchNorm or an activation (ReLU, ReLU6/clamp, leaky ReLU, sigmoid, hard-sigmoid, tanh)
  applied to the output of the convolution just before it is *fused*, as the exporter and ONNX
  Runtime fuse them (``latency.predictor.FUSED_ACTIVATIONS``): it reads no activation, and the
  convolution's output is written once (its weights, e.g. a BatchNorm's, are still read).

So ``activations_read`` counts a tensor again for every kernel that reads it (a residual input is
read twice), and the traffic is what a runtime without cross-kernel caching moves to and from
memory. Bytes: fp32 = 4 per element, int8 = 1 per element (weights and activations; an int8
kernel's int32 biases are counted at 1 byte too: a few hundred bytes per unit).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .limits import MetaKernels, meta_unit
from .unit_count import MetaCount, UnsupportedOpError

__all__ = ["Traffic", "count_traffic", "unit_traffic"]

_FUSABLE = ("batch_norm", "relu", "hardtanh", "clamp", "leaky_relu", "sigmoid", "hardsigmoid", "tanh")


class Traffic(tuple[int, int, int]):
    """(weights_read, activations_read, activations_written), in elements."""

    __slots__ = ()

    @property
    def weights(self) -> int:
        return self[0]

    @property
    def read(self) -> int:
        return self[1]

    @property
    def written(self) -> int:
        return self[2]


def _is_view(func: Any) -> bool:
    returns = func._schema.returns
    return bool(returns) and returns[0].alias_info is not None and not returns[0].alias_info.is_write


class _Recorder(TorchDispatchMode):
    def __init__(self, weights: set[int]) -> None:
        super().__init__()
        self.weight_ids = weights
        self._keep: list[torch.Tensor] = []
        self.weights = 0
        self.read = 0
        self.written = 0
        self.last_conv: tuple[int, int] | None = None  # (id of the conv's output, its numel)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        inputs = [t for t in tree_flatten((args, kwargs or {}))[0] if isinstance(t, torch.Tensor)]
        result = next((t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)), None)
        if inputs and result is not None:  # else a tensor factory (an allocation) or no tensor: no traffic
            self.record(func.__name__.split(".")[0], inputs, result, view=_is_view(func))
        return out

    def record(self, name: str, inputs: list[torch.Tensor], result: torch.Tensor, view: bool) -> None:
        """Count one kernel ``name`` reading ``inputs`` and writing ``result``."""
        if view:
            if id(inputs[0]) in self.weight_ids:
                self.weight_ids.add(id(result))  # a weight seen through a view (the transposed matrix of a Linear)
                self._keep.append(result)  # hold it, so that its id is not reused while we count
            return
        acts = [t for t in inputs if id(t) not in self.weight_ids]
        self.weights += sum(t.numel() for t in inputs if id(t) in self.weight_ids)
        written = result.numel()
        if (self.last_conv is not None and any(k in name for k in _FUSABLE) and len(acts) == 1
                and id(acts[0]) == self.last_conv[0]):
            # fused into the convolution: one kernel, whose output is written once (as this op's result)
            self.written += written - self.last_conv[1]
        else:
            self.read += sum(t.numel() for t in acts)
            self.written += written
            if name != "convolution":
                self.last_conv = None
                return
        self.last_conv = (id(result), written)
        self._keep.append(result)


#: torch functions whose result aliases their input (function level: ``Tensor.view``, ``torch.flatten`` ...)
_VIEWS = frozenset({"view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "unsqueeze", "squeeze",
                    "permute", "transpose", "t", "expand", "expand_as", "narrow", "__getitem__", "contiguous",
                    "detach", "chunk", "split", "unbind", "select", "movedim", "identity",
                    "dropout", "dropout1d", "dropout2d", "alpha_dropout", "feature_alpha_dropout"})  # eval: no-ops


class _FastRecorder(MetaCount):
    """The same rules at the level the Python code calls torch (``F.conv2d``, ``F.relu``, ``x * y``), on
    ``analysis``'s fast meta counter (shape-only results without running meta kernels)."""

    def __init__(self, weights: set[int]) -> None:
        super().__init__()
        self.traffic = _Recorder(weights)

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        out = super().__torch_function__(func, types, args, kwargs)
        name = str(getattr(func, "__name__", "") or "")
        inputs = [t for t in tree_flatten((args, kwargs or {}))[0] if isinstance(t, torch.Tensor)]
        result = next((t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)), None)
        if inputs and result is not None:
            self.traffic.record("convolution" if name.startswith("conv") else name, inputs, result,
                                view=name in _VIEWS)
        return out


def count_traffic(module: nn.Module, in_shape: tuple[int, ...]) -> Traffic:
    """Traffic of ``module`` (deployed, eval) on an input of ``in_shape`` (see the module docstring)."""
    weights = {id(p) for p in module.parameters()} | {id(b) for b in module.buffers()}
    device = next((p.device for p in module.parameters()), torch.device("meta"))
    x = torch.empty(in_shape, device=device)
    if device.type == "meta":
        fast = _FastRecorder(set(weights))
        try:
            with torch.no_grad(), MetaKernels(), fast:
                module(x)
            r = fast.traffic
            return Traffic((r.weights, r.read, r.written))
        except UnsupportedOpError:  # a function the fast counter does not know: every ATen op, one by one
            pass
    recorder = _Recorder(weights)
    with torch.no_grad(), recorder:
        module(x)
    return Traffic((recorder.weights, recorder.read, recorder.written))


@lru_cache(maxsize=8192)
def unit_traffic(config_json: str, in_shape: tuple[int, ...], num_classes: int) -> Traffic:
    """``count_traffic`` of one unit (its config as JSON), built on the meta device (shared with the count:
    ``limits.meta_unit``); cached."""
    module = meta_unit(config_json, in_shape[1], num_classes, deployed=True)
    return count_traffic(module.eval(), tuple(in_shape))
