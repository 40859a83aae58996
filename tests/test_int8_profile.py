"""Issue 12, where the time goes: the condenser's int8 choices, memory traffic, op profiles, int8 predictor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import yaml

from blocks.attention_condenser import AttentionCondenser
from explorer.analysis import analyze
from explorer.build import reparameterize
from explorer.charts import op_time_figure
from explorer.cli import main
from explorer.design import load_design, load_preset, retarget
from explorer.latency.calibrate import Sample, calibrate, profile_error
from explorer.latency.op_profile import compare_ops, profile_ops, quantize_for_timing
from explorer.latency.predictor import predict, predict_units
from explorer.latency.profiles import DeviceProfile, load_profile
from explorer.spec import expand_units
from explorer.traffic import count_traffic, unit_traffic
from explorer.ui import latency_callbacks as lc

TINY = {
    "name": "tiny-int8",
    "input": {"channels": 3, "size": 32},
    "num_classes": 10,
    "stem": [{"type": "conv", "out": 16, "kernel": 3, "stride": 1, "act": "relu"}],
    "stages": [{"name": "s1", "blocks": [{"type": "attention_condenser", "condense_steps": 2, "post_bn": True},
                                         {"type": "dwsep", "out": 32, "stride": 2}]}],
    "head": {"type": "classifier"},
}


def _trained_like(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random BatchNorm statistics and scales, as after training (fresh ones fold to the identity)."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) - 0.5)
        if isinstance(m, AttentionCondenser):
            m.scale.data.copy_(torch.rand(m.scale.shape, generator=gen) + 0.5)
    return module.eval()


# ----------------------------------------------------------------------------- the condenser in int8


REFACTORINGS = [{"gate_at": "condensed"}, {"deploy_embed": "depthwise"},
                {"gate_at": "condensed", "deploy_embed": "depthwise"}]


@pytest.mark.parametrize("options", REFACTORINGS)
@pytest.mark.parametrize(("channels", "base"), [
    (24, {"post_bn": True}), (40, {"post_bn": True}), (64, {}), (48, {"condense_steps": 1, "post_bn": True}),
    (32, {"second_condense": "expansion", "embed_ratio": 0.5, "post_bn": True}), (40, {"embed_groups": 2}),
])
def test_deployment_choices_keep_fp32_outputs_and_params(channels: int, base: dict, options: dict) -> None:
    torch.manual_seed(0)
    reference = _trained_like(AttentionCondenser(channels, **base))
    variant = AttentionCondenser(channels, **base, **options)
    variant.load_state_dict(reference.state_dict())  # the same learned weights: a pure refactoring
    x = torch.randn(2, channels, 30, 30)  # 30: not a multiple of 4, ceil-mode pooling on the way
    with torch.no_grad():
        want = reference(x)
        assert torch.allclose(variant.eval()(x), want, atol=1e-5)  # before folding (training form)
        reparameterize(variant)
        reparameterize(variant)  # idempotent
        assert torch.allclose(variant(x), want, atol=1e-5)  # deployed form
    assert sum(p.numel() for p in variant.parameters()) == sum(p.numel() for p in reference.parameters())


def test_folds_the_post_fusion_batchnorm_exactly() -> None:
    torch.manual_seed(1)
    for fusion in ("multiply", "add"):
        block = _trained_like(AttentionCondenser(32, fusion=fusion, post_bn=True))
        x = torch.randn(1, 32, 16, 16)
        with torch.no_grad():
            want = block(x)
            reparameterize(block)
            assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())
            assert torch.allclose(block(x), want, atol=1e-5)


def test_depthwise_deployment_has_no_grouped_conv_left() -> None:
    block = reparameterize(AttentionCondenser(40, deploy_embed="depthwise"))  # 40 -> 16 in 8 groups: 2 outputs each
    for m in block.modules():
        if isinstance(m, nn.Conv2d) and m.groups > 1:
            assert m.groups == m.in_channels == m.out_channels  # depth-wise, multiplier 1: the fast int8 kernels


def test_hard_sigmoid_is_another_function_and_condensed_gate_needs_multiply() -> None:
    torch.manual_seed(0)
    soft = AttentionCondenser(16).eval()
    hard = AttentionCondenser(16, gate="hard_sigmoid").eval()
    hard.load_state_dict(soft.state_dict())
    x = torch.randn(1, 16, 8, 8)
    assert not torch.allclose(soft(x), hard(x))
    with pytest.raises(ValueError, match="gate_at 'condensed' applies to fusion 'multiply'"):
        AttentionCondenser(16, fusion="add", gate_at="condensed")


@pytest.mark.slow  # over 5 s on a shared 2-core machine
def test_attendnext_uses_the_int8_friendly_form_without_changing_its_params() -> None:
    spec = load_preset("attendnext")
    condensers = [u.config.params for u in expand_units(spec) if u.type == "attention_condenser"]
    assert condensers and all(c["gate_at"] == "condensed" and c["deploy_embed"] == "depthwise" for c in condensers)
    published = spec.to_dict()
    for stage in published["stages"]:
        for block in stage["blocks"]:
            if block.get("type") == "attention_condenser":
                block.update(gate_at="full", deploy_embed="grouped")
    assert analyze(spec).params == analyze(load_design(published)).params  # same learned weights


# ----------------------------------------------------------------------------- memory traffic


def test_traffic_counts_by_hand() -> None:
    with torch.device("meta"):
        conv_bn_relu = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        linear = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(20, 5))
    # one fused kernel: reads the 8×10×10 input and 16·8·9 weights + BN's 4·16, writes 16×10×10 once
    assert count_traffic(conv_bn_relu.eval(), (1, 8, 10, 10)) == (16 * 8 * 9 + 4 * 16, 800, 1600)
    assert count_traffic(linear.eval(), (1, 20, 1, 1)) == (105, 20, 5)  # flatten and dropout (eval) move nothing

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.conv(x)

    with torch.device("meta"):
        residual = Residual().eval()
    assert count_traffic(residual, (1, 8, 10, 10)) == (72, 800 + 2 * 800, 2 * 800)  # x read twice


def test_analysis_rows_and_summary_carry_traffic(capsys: pytest.CaptureFixture[str]) -> None:
    spec = load_design(TINY)
    a = analyze(spec)
    for unit, row in zip(expand_units(spec), a.blocks, strict=True):
        w, r, wr = unit_traffic(unit.config.model_dump_json(), row.in_shape, spec.num_classes)
        assert row.weight_bytes == 4 * w and row.bytes_read == 4 * (w + r) and row.bytes_written == 4 * wr
        assert row.bytes_read_int8 * 4 == row.bytes_read and row.weight_bytes >= 4 * row.params
        assert row.bytes_written >= row.activation_bytes  # at least its output
    assert a.bytes_read == sum(r.bytes_read for r in a.blocks) > 0
    assert main(["summarize", "mobilenetv3_small", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"bytes_read", "bytes_written", "bytes_read_int8", "bytes_written_int8"} <= set(data["blocks"][0])
    assert data["bytes_read"] == sum(b["bytes_read"] for b in data["blocks"])


@pytest.mark.slow  # over 5 s on a shared 2-core machine
def test_traffic_agrees_with_the_predictors_bytes_of_the_exported_graph() -> None:
    from explorer.latency.predictor import layer_profile

    for spec in (load_design(TINY), retarget(load_preset("mobilenetv3_small"), input_size=64)):
        a = analyze(spec)  # two definitions, one by torch function, one by ONNX node: the same traffic
        assert a.bytes_read + a.bytes_written == pytest.approx(sum(la.bytes for la in layer_profile(spec)), rel=0.01)


# ----------------------------------------------------------------------------- op profiles


def test_profile_places_kernels_in_units_fp32_and_int8() -> None:
    from explorer.export import onnx_bytes

    spec = load_design(TINY)
    fp32 = onnx_bytes(spec)
    int8 = quantize_for_timing(fp32, calibration=2)
    ops32 = profile_ops(fp32, runs=2, warmup=1)
    ops8 = profile_ops(int8, runs=2, warmup=1)
    assert any(o.op_type == "QLinearConv" for o in ops8) and not any(o.op_type == "QLinearConv" for o in ops32)
    assert all(o.ms >= 0 for o in ops32 + ops8)
    paths = {u.module_path: u.name for u in expand_units(spec)}
    assert {o.unit for o in ops32} <= set(paths)  # every fp32 kernel lies in a unit
    placed = sum(o.ms for o in ops8 if o.unit is not None) / sum(o.ms for o in ops8)
    assert placed > 0.8  # int8 glue (Transpose, the input's QuantizeLinear) may stay "other"
    rows = compare_ops(ops32, ops8, paths)
    assert [r.unit for r in rows] == sorted((r.unit for r in rows), key=[*paths.values(), "other"].index)
    assert sum(r.fp32_ms for r in rows) == pytest.approx(sum(o.ms for o in ops32))
    fig = op_time_figure(rows)
    assert len(fig.data) >= 2 and "int8" in fig.layout.title.text


def test_quantize_for_timing_quantizes_every_conv_even_with_shared_biases() -> None:
    import onnx

    from explorer.export import onnx_bytes

    int8 = onnx.load_from_string(quantize_for_timing(onnx_bytes(load_design(TINY)), calibration=2))
    convs = [n for n in int8.graph.node if n.op_type == "Conv"]
    dq_out = {o for n in int8.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    assert convs and all(n.input[0] in dq_out and n.input[1] in dq_out for n in convs)


def test_hardswish_as_clip_is_the_same_function_and_runs_in_int8() -> None:
    import onnx
    import onnxruntime as ort

    from explorer.export import onnx_bytes
    from explorer.latency.predictor import unit_of
    from explorer.latency.qdq import hardswish_as_clip, quantize_qdq

    stages = [{"name": "s1", "blocks": [{"type": "dwsep", "out": 32, "stride": 2, "act": "hswish"}]}]
    spec = load_design(TINY | {"stem": [{"type": "conv", "out": 16, "kernel": 3, "stride": 1, "act": "hswish"}],
                               "stages": stages})
    fp32 = onnx_bytes(spec)
    proto = onnx.load_from_string(fp32)
    before = [n.name for n in proto.graph.node if n.op_type == "HardSwish"]
    assert len(before) >= 2  # the stem's and the stage's
    rewritten = hardswish_as_clip(onnx.load_from_string(fp32))
    assert not any(n.op_type == "HardSwish" for n in rewritten.graph.node)
    # every new node stays in the unit of the HardSwish it replaces
    assert {unit_of(n.name) for n in rewritten.graph.node if n.name.startswith(tuple(before))} == \
        {unit_of(b) for b in before}
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32) * 4
    outs = []
    for model in (fp32, rewritten.SerializeToString()):
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        outs.append(np.concatenate([session.run(None, {session.get_inputs()[0].name: x[i:i + 1]})[0]
                                    for i in range(4)]))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)
    # in the int8 graph the rewritten HardSwish is quantized: no fp32 HardSwish/HardSigmoid is left
    kept = {n.op_type for n in onnx.load_from_string(quantize_for_timing(fp32, calibration=2)).graph.node}
    clip = {n.op_type for n in onnx.load_from_string(quantize_for_timing(fp32, 2, hardswish="clip")).graph.node}
    assert "HardSwish" in kept and not {"HardSwish", "HardSigmoid"} & clip
    with pytest.raises(ValueError, match="hardswish 'magic'"):
        quantize_qdq(fp32, [], hardswish="magic")


def test_cli_profile_and_int8_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    assert main(["latency", str(path), "--profile", "--int8", "--runs", "2", "--warmup", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["int8"] and data["fp32_ms"] > 0 and data["int8_ms"] > 0
    assert {r["unit"] for r in data["ops"]} >= {"stem.b1", "s1.b1", "s1.b2", "head"}
    assert main(["latency", str(tmp_path / "model.onnx"), "--int8"]) == 2
    assert "quantize it with `explorer quantize`" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the int8 predictor


@pytest.mark.slow  # over 5 s on a shared 2-core machine
def test_int8_profile_is_the_same_formula_with_its_own_factors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EXPLORER_DEVICES", str(tmp_path))  # only the shipped profiles
    a72 = load_profile("cortex-a72")
    assert a72.int8 is not None and "reconstructed" in a72.int8.source  # says honestly where it comes from
    q = a72.int8_profile()
    assert q.peak_gflops == a72.int8.peak_gops and q.bandwidth_gbs == 4 * a72.bandwidth_gbs and q.int8 is None
    spec = load_design(TINY)
    units = predict_units(spec, q)
    assert sum(u.ms for u in units) + q.const_ms == pytest.approx(predict(spec, q))
    assert main(["latency", "mobilenetv3_small", "--input", "64", "--predict", "cortex-a72", "--int8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    small = retarget(load_preset("mobilenetv3_small"), input_size=64)
    assert data["int8"] and data["predicted_ms"] == pytest.approx(predict(small, q), rel=1e-6)
    with pytest.raises(ValueError, match="no int8 section"):
        DeviceProfile(name="bare", peak_gflops=10, bandwidth_gbs=5).int8_profile()


@pytest.mark.slow  # over 5 s on a shared 2-core machine
def test_calibrate_int8_fits_the_int8_section_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import explorer.latency.calibrate as cal
    import explorer.latency.op_profile as op

    base = load_profile("host")
    truth = base.int8_profile().model_copy(update={"elementwise_overhead_us": 7.0, "const_ms": 0.3})
    widths = [8, 16, 24, 32, 40, 48]
    specs = [load_design({**TINY, "name": f"t{w}", "stem": [{**TINY["stem"][0], "out": w}]}) for w in widths]
    monkeypatch.setattr(cal, "random_architectures", lambda n, **_: specs[:n])
    quantized: list[bytes] = []
    monkeypatch.setattr(op, "quantize_for_timing", lambda model: quantized.append(model) or b"int8:" + model)
    by_model = {}

    def measure(model: bytes) -> dict[str, float]:
        assert model.startswith(b"int8:")  # the int8 graph is what gets measured
        return {"median_ms": by_model[model[5:]]}

    from explorer.export import onnx_bytes

    for s in specs:
        by_model[onnx_bytes(s)] = predict(s, truth)
    result = calibrate(base, measure, n=6, holdout=0.34, rounds=2, int8=True)
    assert len(quantized) == 6  # each design quantized once, measured twice
    fitted = result.profile
    assert fitted.compute_scale == base.compute_scale and fitted.const_ms == base.const_ms  # fp32 factors untouched
    assert fitted.int8 is not None and fitted.int8.calibration is not None and "fitted" in fitted.int8.source
    _, within, _ = profile_error(fitted.int8_profile(), [Sample(name=s.name, spec_json=s.model_dump_json(),
                                                                measured_ms=predict(s, truth)) for s in specs])
    assert within == 1.0


# ----------------------------------------------------------------------------- the Latency tab


def test_latency_tab_profile_callback() -> None:
    out = lc.on_profile(yaml.safe_dump(TINY), int8=False, runs=2)
    assert "fp32" in out["status"] and out["chart"] is not None and out["table"]
    assert all(row[3] == 0 for row in out["table"])  # no int8 column without int8
    bad = lc.on_profile("name: [", int8=False)
    assert bad["status"].startswith("⚠") and bad["chart"] is None
    assert lc.on_profile(yaml.safe_dump(TINY), runs=0)["status"].startswith("⚠")
    assert np.isfinite(out["result"]["fp32_ms"])
