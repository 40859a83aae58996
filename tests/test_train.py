"""Short training runs: the recipe's pieces, reproducibility, cancel, weights, stored runs and the CLI."""

from __future__ import annotations

import json
import math
import pickle
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest
import torch
import yaml

from explorer.analysis import analyze
from explorer.checkpoint import FORMAT, load_checkpoint
from explorer.cli import main
from explorer.data import load_dataset
from explorer.design import load_design, retarget
from explorer.spec import SpecError
from explorer.store import StepRow, Store
from explorer.train import (
    TrainConfig,
    augment_batch,
    evaluate,
    lr_at,
    make_config,
    precise_bn,
    train,
)

from tiny_designs import tiny_design

TINY = tiny_design(width=24)


def cfg(**kw: object) -> TrainConfig:
    base = dict(steps=30, input_size=16, batch_size=32, log_every=5, lr=1e-2)
    return make_config(**{**base, **kw})


def test_schedule_warms_up_then_decays_to_zero() -> None:
    assert lr_at(0.0, 1.0, 0.1) == 0.0 and lr_at(0.05, 1.0, 0.1) == pytest.approx(0.5)
    assert lr_at(0.1, 1.0, 0.1) == pytest.approx(1.0)
    assert lr_at(0.55, 1.0, 0.1) == pytest.approx(0.5)  # half-way through the cosine
    assert lr_at(1.0, 1.0, 0.1) == pytest.approx(0.0, abs=1e-12)
    after = [lr_at(p / 100, 2e-3, 0.1) for p in range(10, 101)]
    assert all(a >= b for a, b in pairwise(after))


def test_augmentation_crops_and_flips() -> None:
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6) + 1
    g = torch.Generator().manual_seed(0)
    assert torch.equal(augment_batch(x, 0, False, g), x)
    for seed in range(10):
        out = augment_batch(x, 2, False, torch.Generator().manual_seed(seed))
        padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
        for i in range(2):  # every output image is one window of its zero-padded input
            windows = [padded[i, :, dy:dy + 6, dx:dx + 6] for dy in range(5) for dx in range(5)]
            assert any(torch.equal(out[i], w) for w in windows)
    flipped = [augment_batch(x, 0, True, torch.Generator().manual_seed(s)) for s in range(8)]
    assert any(torch.equal(f[0], x[0].flip(2)) for f in flipped) and any(torch.equal(f[0], x[0]) for f in flipped)
    a = augment_batch(x, 2, True, torch.Generator().manual_seed(5))
    assert torch.equal(a, augment_batch(x, 2, True, torch.Generator().manual_seed(5)))


def test_config_errors_are_one_line() -> None:
    with pytest.raises(ValueError, match="training steps"):
        make_config(steps=0)
    with pytest.raises(ValueError, match="training batch_size"):
        make_config(batch_size=1)
    assert make_config(minutes=0.5).steps is None
    from explorer.design import load_preset

    with pytest.raises(SpecError, match="attendnext at 16×16: stage 5"):
        retarget(load_preset("attendnext"), input_size=16, num_classes=10)


@pytest.mark.slow
def test_same_seed_same_losses_and_training_learns() -> None:
    a = train(TINY, cfg(steps=60, seed=3, eval_every=0))
    b = train(TINY, cfg(steps=60, seed=3, eval_every=0))
    c = train(TINY, cfg(steps=60, seed=4, eval_every=0))
    losses = lambda r: [p.train_loss for p in r.curve if p.train_loss is not None]  # noqa: E731
    assert losses(a) == losses(b) and a.val_accuracy == b.val_accuracy
    assert losses(a) != losses(c)
    assert a.status == "finished" and a.steps == 60 and len(losses(a)) == 12
    assert losses(a)[-1] < losses(a)[0] - 0.4  # it learns: the loss falls
    assert a.val_accuracy > 0.4  # far above chance (0.1) after 60 small steps
    assert a.images_per_s > 0 and a.seconds >= a.train_seconds > 0 and a.num_classes == 10 and a.input_size == 16


def test_cancel_stops_quickly_and_keeps_what_was_learned(tmp_path: Path) -> None:
    cancel = threading.Event()
    seen = []

    def on_step(p: StepRow) -> None:  # cancel at the first logged point
        seen.append(p)
        cancel.set()

    with Store(tmp_path / "c.sqlite") as store:
        r = train(TINY, cfg(steps=10_000), on_step=on_step, cancel=cancel, store=store)
        assert r.status == "cancelled" and r.steps == 5 and r.val_accuracy is not None
        stored = store.get_run(r.run_id)
        assert stored.status == "cancelled" and stored.metrics["steps"] == 5 and Path(r.weights_path).is_file()

    # from another thread, mid-run: the run returns within a second of the request
    cancel = threading.Event()
    spent: dict[str, float] = {}

    def stop_later() -> None:
        time.sleep(1.0)
        spent["set"] = time.perf_counter()
        cancel.set()

    threading.Thread(target=stop_later).start()
    r = train(TINY, cfg(steps=1_000_000, log_every=1000), cancel=cancel)
    waited = time.perf_counter() - spent["set"]
    assert r.status == "cancelled" and 0 < r.steps < 1_000_000 and waited < 1.0
    assert r.val_accuracy is not None  # evaluated after the stop


def test_weights_reload_with_weights_only(tmp_path: Path) -> None:
    r = train(TINY, cfg(steps=20, weights_dir=str(tmp_path)))
    payload = torch.load(r.weights_path, weights_only=True)
    assert payload["format"] == FORMAT and all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values())
    spec, model = load_checkpoint(r.weights_path)
    data = load_dataset("digits", 16)
    assert evaluate(model, data.val_x, data.val_y) == pytest.approx(r.val_accuracy)
    assert spec.to_yaml() == r.spec_yaml  # the checkpoint carries the trained copy of the design

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"w": Evil()}))
    with pytest.raises(ValueError, match="refused to load"):
        load_checkpoint(bad)
    three = tmp_path / "three.pt"  # the same weights labelled with a 3-class design
    torch.save({**payload, "spec_yaml": retarget(spec, num_classes=3).to_yaml()}, three)
    misfit = r"three.pt: tensor head.fc.weight has shape \[10, 48\], the design expects \[3, 48\]"
    with pytest.raises(ValueError, match=misfit):
        load_checkpoint(three)


def test_precise_bn_matches_batch_statistics() -> None:
    from explorer.build import build_model

    torch.manual_seed(0)
    model = build_model(load_design(TINY))
    x = torch.randn(64, 3, 16, 16) * 3 + 1
    assert precise_bn(model, x, max_images=64, batch_size=64) > 0
    bn = model.stem.b1[1]  # the stem conv's BatchNorm
    with torch.no_grad():
        h = model.stem.b1[0](x)
    assert torch.allclose(bn.running_mean, h.mean(dim=(0, 2, 3)), atol=1e-4)
    assert torch.allclose(bn.running_var, h.var(dim=(0, 2, 3), unbiased=True), rtol=1e-3)
    assert bn.momentum == 0.1 and model.training


def test_time_budget_and_other_datasets(tmp_path: Path) -> None:
    r = train(TINY, make_config(minutes=0.02, input_size=16, batch_size=32, log_every=5))
    assert r.status == "finished" and 1.0 < r.train_seconds < 3.0 and r.steps > 0
    s = train(TINY, cfg(dataset="shapes", steps=10, n_train=200, n_val=50))
    assert s.num_classes == 10 and s.val_accuracy is not None
    from PIL import Image

    for k, name in enumerate(["a", "b"]):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(6):
            image = Image.new("RGB", (20, 20), (200 * (k == 0), 200 * (k == 1), i * 10))
            image.save(tmp_path / "imgs" / name / f"{i}.png")
    f = train(TINY, cfg(dataset=str(tmp_path / "imgs"), steps=10, batch_size=8))
    assert f.num_classes == 2 and load_design(f.spec_yaml).num_classes == 2


def test_stored_run_has_design_analysis_and_curve(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        r = train(TINY, cfg(steps=20, eval_every=10), store=store)
        run = store.get_run(r.run_id)
        assert run.status == "finished" and run.design_name == "tiny" and run.dataset == "digits"
        assert [p.step for p in run.curve] == [5, 10, 15, 20]
        assert [p.val_accuracy is not None for p in run.curve] == [False, True, False, True]
        assert run.metrics["val_accuracy"] == r.val_accuracy and run.metrics["macs"] == r.macs > 0
        assert run.config["input_size"] == 16 and run.config["num_classes"] == 10
        assert run.config["trained_design_id"] == run.design_id  # TINY is already 16², 10 classes: one design
        assert store.list_analyses(run.design_id)[0]["macs"] == r.macs
        assert r.params == analyze(load_design(r.spec_yaml)).params
        # a 1000-class design: the trained 10-class copy is stored with its analysis under its own id
        big = train({**TINY, "name": "tiny-1000", "num_classes": 1000}, cfg(steps=5, eval_every=0), store=store)
        big_run = store.get_run(big.run_id)
        trained = big_run.config["trained_design_id"]
        assert trained != big_run.design_id and store.list_analyses(big_run.design_id) == []
        assert load_design(store.get_design(big_run.design_id).spec_yaml).num_classes == 1000  # the design as given
        assert store.list_analyses(trained)[0]["params"] == big.params == analyze(load_design(big.spec_yaml)).params
        assert load_design(store.get_design(trained).spec_yaml).num_classes == 10
        assert Path(run.weights_path) == tmp_path / "s-weights" / f"run-{r.run_id}.pt"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_train_runs_and_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY))
    db = str(tmp_path / "cli.sqlite")
    code, out, _ = _cli(capsys, "train", str(spec), "--dataset", "digits", "--steps", "12", "--input", "16",
                        "--db", db, "--json")
    data = json.loads(out)
    assert code == 0 and len(out.strip().splitlines()) == 1
    assert {"run_id", "steps", "seconds", "final_train_loss", "val_accuracy", "images_per_s"} <= set(data)
    assert data["steps"] == 12 and 0 <= data["val_accuracy"] <= 1 and math.isfinite(data["final_train_loss"])
    code, out, _ = _cli(capsys, "train", str(spec), "--steps", "3", "--input", "16", "--db", db)
    assert code == 0 and "run 2 finished" in out and "val accuracy" in out

    code, out, _ = _cli(capsys, "runs", "--db", db, "--json")
    runs = json.loads(out)
    assert code == 0 and [r["id"] for r in runs] == [2, 1] and runs[1]["metrics"]["steps"] == 12
    code, out, _ = _cli(capsys, "runs", "--db", db)
    assert code == 0 and "finished" in out and "tiny" in out
    code, out, _ = _cli(capsys, "runs", "1", "--db", db, "--json")
    assert code == 0 and [p["step"] for p in json.loads(out)["curve"]][-1] == 12
    code, out, _ = _cli(capsys, "runs", "1", "--db", db)
    assert code == 0 and "val acc" in out

    for argv, message in [
        (["train", str(spec), "--dataset", "nope", "--db", db], "no dataset 'nope'"),
        (["train", str(spec), "--steps", "0", "--db", db], "training steps"),
        (["train", str(spec), "--steps", "5", "--minutes", "1", "--db", db], "not allowed with argument"),
        (["train", "attendnext", "--input", "16", "--steps", "2", "--db", db], "attendnext at 16×16"),
        (["train", str(spec), "--input", "4", "--steps", "2", "--db", db],
         "training input_size 4: input should be greater than or equal to 8"),
        (["train", "no_such_preset", "--db", db], "neither a preset"),
        (["runs", "9", "--db", db], "no run 9"),
        (["runs", "--db", str(tmp_path / "missing.sqlite")], "no store at"),
    ]:
        code, out, err = _cli(capsys, *argv)
        assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1, (argv, err)
