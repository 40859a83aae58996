"""Every registered block: schema, shapes at awkward sizes, gradients, and the block-specific math."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn as nn

import blocks
from blocks import AttentionCondenser, BlurPool, MobileOneBlock, RepConv, get_block, list_blocks
from explorer.build import reparameterize

ALL = [e.name for e in list_blocks()]


def _required(entry: blocks.BlockEntry) -> dict:
    return {"out": 24} if "out" in entry.param_names and entry.params_model.model_fields["out"].is_required() else {}


def test_registry_lists_every_block_of_the_library() -> None:
    expected = {"conv", "dwsep", "ir", "se", "mobileone", "repconv", "blurpool", "attention_condenser",
                "mobilevit", "classifier"}
    assert expected <= set(ALL)
    for entry in list_blocks():
        assert entry.summary and entry.cls.__doc__, f"{entry.name} needs a docstring"
        schema = entry.json_schema()
        assert schema["type"] == "object"
        assert set(schema["properties"]) == set(entry.param_names)


def test_unknown_block_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown block type 'convv'; known types: .*conv"):
        get_block("convv")


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("size", [(17, 23), (32, 32), (7, 9)])
def test_block_shapes_at_odd_sizes(name: str, size: tuple[int, int]) -> None:
    entry = get_block(name)
    module = entry.build(16, _required(entry), num_classes=5).eval()
    x = torch.randn(2, 16, *size)
    with torch.no_grad():
        y = module(x)
    if entry.category == "head":
        assert y.shape == (2, 5)
        return
    stride = entry.defaults().get("stride", 1)
    expected_hw = tuple(-(-s // stride) for s in size)  # ceil(s / stride)
    assert y.shape == (2, module.out_channels, *expected_hw)


@pytest.mark.parametrize("name", ALL)
def test_gradients_reach_every_parameter(name: str) -> None:
    entry = get_block(name)
    module = entry.build(16, _required(entry), num_classes=5).train()
    x = torch.randn(2, 16, 12, 12, requires_grad=True)
    module(x).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, p in module.named_parameters():
        assert p.grad is not None, f"{name}.{pname} gets no gradient"
        assert torch.isfinite(p.grad).all()


def _randomise_bn(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RepConv(16, out=16, kernel=3, stride=1, groups=0, branches=3),  # identity + scale + 3 branches
        lambda: RepConv(16, out=32, kernel=3, stride=2, groups=1, branches=2),  # no identity
        lambda: RepConv(16, out=16, kernel=1, branches=1),  # no scale branch
        lambda: MobileOneBlock(16, out=32, kernel=3, stride=2, branches=4),
        lambda: MobileOneBlock(24, out=24, kernel=5, stride=1, branches=1),
    ],
)
def test_mobileone_reparameterisation_is_exact(make: Callable[[], nn.Module]) -> None:
    module = make()
    _randomise_bn(module)
    module.eval()
    x = torch.randn(2, module.dw.in_channels if hasattr(module, "dw") else module.in_channels, 15, 13)
    with torch.no_grad():
        before = module(x)
        reparameterize(module)
        after = module(x)
    assert (before - after).abs().max().item() < 1e-5
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is not None for c in convs) and not any(isinstance(m, nn.BatchNorm2d) for m in module.modules())


def test_blurpool_is_a_normalised_lowpass_filter() -> None:
    pool = BlurPool(3, filter_size=5, stride=2)
    flat = torch.full((1, 3, 16, 16), 2.5)
    assert torch.allclose(pool(flat), torch.full((1, 3, 8, 8), 2.5))
    assert pool.filt.sum(dim=(-1, -2)).allclose(torch.ones(3, 1))
    assert not list(pool.parameters())


def test_blurpool_is_more_shift_stable_than_plain_subsampling() -> None:
    x = torch.zeros(1, 1, 32, 32)
    x[..., ::2, :] = 1.0  # a stripe pattern at the Nyquist frequency
    shifted = torch.roll(x, 1, dims=2)
    naive = (x[..., ::2, ::2] - shifted[..., ::2, ::2]).abs().mean()
    pool = BlurPool(1, filter_size=3)
    blurred = (pool(x) - pool(shifted)).abs().mean()
    assert blurred < 0.5 * naive


@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("source", ["embedding", "expansion"])
def test_condenser_embedding_resolution(steps: int, source: str) -> None:
    ac = AttentionCondenser(32, condense_steps=steps, second_condense=source).eval()
    seen = []
    ac.expand.register_forward_hook(lambda _m, inp, _out: seen.append(inp[0].shape))
    v = torch.randn(1, 32, 32, 32)
    assert ac(v).shape == v.shape
    assert seen[0][-2:] == (32 // 2**steps, 32 // 2**steps)  # embedding at 1/4 or 1/16 of the area
    assert seen[0][1] == ac.embed_channels == 8


def test_double_condensing_is_cheaper_than_single() -> None:
    from explorer.analysis import fvcore_counter

    x = torch.zeros(1, 64, 56, 56)
    macs = {}
    for steps in (1, 2):
        ac = AttentionCondenser(64, condense_steps=steps).eval()
        macs[steps] = fvcore_counter(ac, x).total()
    assert macs[2] < macs[1]


def test_condenser_fusions_follow_their_equations() -> None:
    v = torch.randn(1, 16, 8, 8)
    mult = AttentionCondenser(16, condense_steps=1, fusion="multiply").eval()
    add = AttentionCondenser(16, condense_steps=1, fusion="add").eval()
    add.load_state_dict(mult.state_dict())
    with torch.no_grad():
        mult.scale.fill_(0.5)
        add.scale.fill_(0.5)
        a = mult.attention(v)
        assert torch.allclose(mult(v), v * torch.sigmoid(a) * 0.5)
        assert torch.allclose(add(v), v * 0.5 + a)


def test_condenser_variants_have_their_own_parameters() -> None:
    base = AttentionCondenser(32, condense_steps=2, second_condense="embedding")
    via_expansion = AttentionCondenser(32, condense_steps=2, second_condense="expansion")
    assert via_expansion.expand1 is not None and base.expand1 is None
    assert isinstance(AttentionCondenser(32, post_bn=True).norm, nn.BatchNorm2d)
    leaky = AttentionCondenser(32, embed_act="leaky_relu")
    assert any(isinstance(m, nn.LeakyReLU) for m in leaky.modules())


def test_group_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match="groups 3 must divide both"):
        blocks.ConvBnAct(16, out=32, groups=3)
    with pytest.raises(ValueError, match="not divisible by heads"):
        blocks.MobileViTBlock(16, dim=30, heads=4)


def test_inverted_residual_residual_rule() -> None:
    assert blocks.InvertedResidual(16, out=16).has_residual
    assert not blocks.InvertedResidual(16, out=16, stride=2).has_residual
    assert not blocks.InvertedResidual(16, out=24).has_residual
    assert blocks.InvertedResidual(16, out=24, expand=3).mid_channels == 48


def test_mobilevit_unfold_fold_round_trip() -> None:
    block = blocks.MobileViTBlock(8, dim=16, heads=2, patch=2)
    x = torch.randn(2, 16, 6, 10)
    tokens = block.unfold(x)
    assert tokens.shape == (2 * 4, 3 * 5, 16)
    assert torch.equal(block.fold(tokens, 6, 10), x)
