"""Zero-cost proxies against their formulas on small hand-checkable nets, on real designs, and Kendall's tau."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from explorer.cli import main
from explorer.proxies import PROXIES, compute_proxies, grad_norm, kendall_tau_b, naswot, snip, synflow
from explorer.store import Store

from tiny_designs import tiny_design

TINY = tiny_design(stem_stride=2, act="hswish", last={"type": "ir", "out": 24, "stride": 2, "expand": 3})


def _batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 2, 2, generator=g), torch.randint(0, 3, (n,), generator=g)


def _mlp(bn: bool = False) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(12, 5, bias=False)]
    if bn:
        layers.append(nn.BatchNorm1d(5))
    layers += [nn.ReLU(), nn.Linear(5, 3, bias=False)]
    return nn.Sequential(*layers)


def test_synflow_conserves_flow_on_a_linear_chain() -> None:
    """Without biases each layer carries the whole flow: S = Σ_l |θ_l ⊙ ∂R/∂θ_l| = L · R, R = 𝟙ᵀ|W2||W1|𝟙."""
    net = _mlp()
    w1, w2 = net[1].weight.detach().double().abs(), net[3].weight.detach().double().abs()
    r = float(torch.ones(3, dtype=torch.float64) @ w2 @ w1 @ torch.ones(12, dtype=torch.float64))
    assert synflow(net, _batch()) == pytest.approx(2 * r, rel=1e-12)
    assert torch.equal(net[1].weight, _mlp()[1].weight)  # the model is left as it was (signs and all)
    with_bn = _mlp(bn=True)
    with_bn[2].running_var.fill_(100.0)  # BN is bypassed: its statistics cannot matter
    assert synflow(with_bn, _batch()) == pytest.approx(2 * r, rel=1e-12)


def test_naswot_is_the_log_determinant_of_the_hamming_kernel() -> None:
    net = _mlp()
    x, y = _batch(8)
    with torch.no_grad():
        pre = net[1](net[0](x))  # what the ReLU sees
    c = (pre > 0).double().numpy()
    k = c @ c.T + (1 - c) @ (1 - c).T
    assert np.allclose(np.diag(k), 5) and np.all(k == k.T)  # N_A = 5 units; K_ii = N_A
    assert naswot(net, (x, y)) == pytest.approx(np.linalg.slogdet(k)[1], abs=1e-9)
    with pytest.raises(ValueError, match="rectifier"):
        naswot(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), (x, y))


def test_grad_norm_and_snip_follow_their_formulas() -> None:
    net = _mlp()
    x, y = _batch(8)
    ref = _mlp()
    F.cross_entropy(ref(x), y).backward()
    layers = [ref[1], ref[3]]
    assert grad_norm(net, (x, y)) == pytest.approx(sum(float(m.weight.grad.norm()) for m in layers), rel=1e-6)
    assert snip(net, (x, y)) == pytest.approx(
        sum(float((m.weight * m.weight.grad).detach().abs().sum()) for m in layers), rel=1e-6
    )
    assert net[1].weight.grad is None  # computed on a copy


def test_compute_proxies_on_designs_is_seeded_and_quick() -> None:
    a = compute_proxies(TINY, input_size=16, batch_size=16, seed=0)
    b = compute_proxies(TINY, input_size=16, batch_size=16, seed=0)
    c = compute_proxies(TINY, input_size=16, batch_size=16, seed=1)
    assert {k: a[k] for k in PROXIES} == {k: b[k] for k in PROXIES}
    assert all(a[k] != c[k] for k in ("grad_norm", "snip", "synflow"))
    assert a["synflow"] > 0 and a["grad_norm"] > 0 and a["snip"] > 0 and math.isfinite(a["naswot"])
    assert a["input_size"] == 16 and a["batch_size"] == 16 and a["params"] > 0
    assert all(0 <= s < 5 for s in a["seconds"].values())
    big = compute_proxies("attendnext", input_size=32, batch_size=32, seed=0, names=["synflow", "naswot"])
    assert set(big) >= {"synflow", "naswot"} and "snip" not in big and big["synflow"] > 0
    with pytest.raises(ValueError, match="unknown proxy"):
        compute_proxies(TINY, input_size=16, names=["jacob"])


def test_kendall_tau_b_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.RandomState(0)
    for _ in range(20):
        a = rng.randint(0, 5, 12).astype(float)  # with ties
        b = a + rng.randn(12) * 2
        b[rng.rand(12) < 0.3] = 1.0
        assert kendall_tau_b(a, b) == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))


def test_cli_proxies(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import yaml

    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY))
    db = tmp_path / "p.sqlite"
    code = main(["proxies", str(spec), "--input", "16", "--batch", "8", "--db", str(db), "--json"])
    out, _ = capsys.readouterr()
    data = json.loads(out)
    assert code == 0 and set(PROXIES) <= set(data) and set(data["seconds"]) == set(PROXIES)
    with Store(db) as s:
        row = s.list_proxies()[0]
        assert row["scores"]["naswot"] == data["naswot"] and row["input_size"] == 16
    code = main(["proxies", str(spec), "--input", "16", "--batch", "8", "--db", str(db)])
    out, _ = capsys.readouterr()
    assert code == 0 and "synflow" in out and "naswot" in out
    code = main(["proxies", str(spec), "--batch", "1", "--db", str(db)])
    _, err = capsys.readouterr()
    assert code == 2 and "batch size 1 is out of range" in err
