"""The memoised meta kernels and the shared meta build (``limits.run_meta``, ``limits.meta_unit``) change
no number: the size check, the count and the traffic equal the plain path (every meta kernel run, every
unit built anew for each pass) on every unit of every preset and along seeded mutation walks."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
import torch

import explorer.limits as limits
from explorer.analysis import _count_meta
from explorer.design import load_preset
from explorer.limits import check_size, meta_probe, meta_unit, run_meta
from explorer.mutate import random_mutation
from explorer.presets import list_presets
from explorer.spec import ArchitectureSpec, SpecError
from explorer.traffic import unit_traffic

Unit = tuple[str, tuple[int, ...], int]


def _units(specs: list[ArchitectureSpec]) -> list[Unit]:
    out: list[Unit] = []
    for spec in specs:
        out += [(r.unit.config.model_dump_json(), r.in_shape, spec.num_classes) for r in check_size(spec)]
    return list(dict.fromkeys(out))


def _walk(name: str, seed: int, steps: int) -> list[ArchitectureSpec]:
    spec, rng, out = load_preset(name), random.Random(seed), []
    for _ in range(steps):
        try:
            spec = random_mutation(spec, rng).spec
        except SpecError:
            continue
        out.append(spec)
    return out


def _numbers(units: list[Unit]) -> list[tuple[Any, ...]]:
    """Every number the three meta passes give for each unit (uncached: each call computes)."""
    return [(meta_probe.__wrapped__(*u), _count_meta(*u), unit_traffic.__wrapped__(*u)) for u in units]


def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every meta kernel runs, and every pass builds its unit anew."""
    monkeypatch.setattr(limits, "run_meta", lambda func, args, kwargs: func(*args, **kwargs))
    monkeypatch.setattr(limits, "_KEEP_BUILT", 0)
    limits._BUILT.__dict__.clear()


def test_presets_and_mutation_walks_give_the_same_numbers_as_the_plain_path(monkeypatch: pytest.MonkeyPatch) -> None:
    specs = [load_preset(name) for name in list_presets()]
    specs += _walk("attendnext", 0, 12) + _walk("mobilevit_xs", 1, 8) + _walk("mobileone_s1", 2, 8)
    units = _units(specs)
    assert len(units) > 100
    limits._KERNELS.clear()
    fast_cold = _numbers(units)
    fast_warm = _numbers(units)  # every kernel now memoised
    with monkeypatch.context() as m:
        _plain(m)
        plain = _numbers(units)
    assert fast_cold == plain
    assert fast_warm == plain
    assert any(v is limits._SELF for v in limits._KERNELS.values())  # in-place initialisers were skipped
    assert any(isinstance(v, tuple) and v[0] == "T" for v in limits._KERNELS.values())


def test_a_memoised_kernel_gives_fresh_tensors_of_the_kernel_s_shape() -> None:
    x = torch.empty(1, 8, 5, 5, device="meta")
    w = torch.empty(8, device="meta")
    bn = torch.ops.aten.native_batch_norm.default
    args = (x, w, w, w, w, False, 0.1, 1e-5)
    first = run_meta(bn, args, {})
    again = run_meta(bn, args, {})  # from the memo
    assert [(t.shape, t.stride(), t.dtype) for t in first] == [(t.shape, t.stride(), t.dtype) for t in again]
    storages = {t.untyped_storage()._cdata for t in again} | {x.untyped_storage()._cdata}
    assert len(storages) == 4  # fresh, like the kernel's own outputs


def test_in_place_ops_return_their_argument_and_shape_changing_ones_always_run() -> None:
    x = torch.empty(2, 3, device="meta")
    for _ in range(2):
        assert run_meta(torch.ops.aten.relu_.default, (x,), {}) is x
    for _ in range(2):  # unsqueeze_ changes x's shape in place: memoising it would skip that
        y = torch.empty(2, 3, device="meta")
        assert run_meta(torch.ops.aten.unsqueeze_.default, (y, 0), {}) is y
        assert tuple(y.shape) == (1, 2, 3)
    v = run_meta(torch.ops.aten.view.default, (x, [6]), {})  # a view: always run, shares x's storage
    assert v.untyped_storage()._cdata == x.untyped_storage()._cdata


def test_a_real_tensor_argument_is_never_memoised() -> None:
    before = len(limits._KERNELS)
    out = run_meta(torch.ops.aten.add.Tensor, (torch.ones(2), torch.ones(2)), {})
    assert out.tolist() == [2.0, 2.0] and len(limits._KERNELS) == before


def _in_thread(fn: Callable[[], Any]) -> Any:
    box: list[Any] = []
    t = threading.Thread(target=lambda: box.append(fn()))
    t.start()
    t.join()
    return box[0]


def test_a_built_unit_is_shared_within_a_thread_only_and_folding_rebuilds_the_unfolded_form() -> None:
    spec = load_preset("mobileone_s1")  # re-parameterisable blocks: folded and unfolded differ
    row = next(r for r in check_size(spec) if r.unit.type == "mobileone")
    key = (row.unit.config.model_dump_json(), row.in_shape[1], spec.num_classes)
    unfolded = meta_unit(*key, deployed=False)
    assert meta_unit(*key, deployed=False) is unfolded
    assert _in_thread(lambda: meta_unit(*key, deployed=False)) is not unfolded  # hooks must not cross threads
    params = sum(p.numel() for p in unfolded.parameters())
    folded = meta_unit(*key, deployed=True)
    assert folded is unfolded and sum(p.numel() for p in folded.parameters()) < params
    again = meta_unit(*key, deployed=False)  # folded in place: the trained form is built again
    assert again is not folded and sum(p.numel() for p in again.parameters()) == params
