"""Training and history tabs: their callbacks, called without a browser, and their layout."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import gradio as gr
import plotly.graph_objects as go
import pytest
import yaml

from explorer.design import load_design
from explorer.store import Store
from explorer.ui import history_callbacks as hc
from explorer.ui import training_callbacks as tc

from tiny_designs import tiny_design

TINY = tiny_design("tiny-ui", 16)
TINY_YAML = yaml.safe_dump(TINY, sort_keys=False)


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "ui.sqlite")
    yield s
    s.close()


@pytest.mark.slow
def test_training_streams_live_curves_and_stores_the_run(store: Store) -> None:
    frames = list(tc.on_start_training(TINY_YAML, "digits", 40, 16, 0, session="a", store=store, poll_s=0.05))
    assert len(frames) >= 3  # the first status, live updates, the final result
    status, loss, acc = frames[-1]
    assert "Run 1 finished" in status and "val accuracy" in status
    assert isinstance(loss, go.Figure) and isinstance(acc, go.Figure)
    assert list(loss.data[0].x) == [2 * k for k in range(1, 21)]  # logged every 2 steps (40 // 20)
    assert list(acc.data[0].x)[-1] == 40 and 0 <= max(acc.data[0].y) <= 100
    live = [f for f in frames[1:-1] if len(f[1].data[0].x)]
    assert live and len(live[0][1].data[0].x) < 20  # curves grew while training ran
    assert store.get_run(1).status == "finished" and tc.active_sessions() == []


def test_cancel_stops_within_a_second_and_keeps_the_run(store: Store) -> None:
    frames: list[tuple] = []
    done = threading.Event()

    def consume() -> None:
        for f in tc.on_start_training(TINY_YAML, "digits", 20_000, 16, 1, session="b", store=store, poll_s=0.05):
            frames.append(f)
        done.set()

    threading.Thread(target=consume).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(len(f[1].data[0].x) for f in frames):
        time.sleep(0.05)  # wait for a first curve point
    assert tc.on_cancel_training("nobody") == "No run is going."
    # a second run in the same session is refused while the first one goes
    refused = list(tc.on_start_training(TINY_YAML, "digits", 10, 16, 0, session="b", store=store))
    assert "already going" in refused[0][0]
    t0 = time.perf_counter()
    assert "Cancelling" in tc.on_cancel_training("b")
    assert done.wait(10)
    assert time.perf_counter() - t0 < 1.5  # stop after one step, then evaluate and save
    status = frames[-1][0]
    assert "cancelled" in status and "keeps what it learned" in status
    run = store.list_runs()[0]
    assert run.status == "cancelled" and 0 < run.metrics["steps"] < 20_000 and run.metrics["val_accuracy"] is not None
    assert Path(run.weights_path).is_file()


@pytest.mark.parametrize("args, message", [
    (("name: x\nstages: [oops",), "Cannot train"),
    ((TINY_YAML, "imagenet"), "dataset 'imagenet'"),
    ((TINY_YAML, "digits", 0), "steps 0 is out of range"),
    ((TINY_YAML, "digits", 10, 12.5), "input size 12.5"),
    ((TINY_YAML, "digits", 10, 16, -1), "seed -1"),
])
def test_training_mistakes_are_one_status_line(store: Store, args: tuple, message: str) -> None:
    frames = list(tc.on_start_training(*args, session="c", store=store))
    assert len(frames) == 1 and message in frames[0][0] and store.list_runs() == []


def test_history_tables_charts_and_load_into_editor(store: Store) -> None:
    from explorer.train import make_config, train

    for seed in (0, 1):
        train(TINY, make_config(steps=10, input_size=16, log_every=5, seed=seed), store=store)
    other = {**TINY, "name": "other"}
    train(other, make_config(steps=10, input_size=16, dataset="shapes", n_train=100, n_val=20), store=store)
    out = hc.on_refresh(store)
    assert "3 run(s), 2 design(s)" in out["status"]
    assert [r[0] for r in out["runs_table"]] == [3, 2, 1] and len(out["runs_table"][0]) == len(hc.RUN_HEADERS)
    assert out["runs_table"][0][3] == "shapes" and isinstance(out["runs_table"][0][6], float)
    tiny_row = next(r for r in out["designs_table"] if r[1] == "tiny-ui")
    assert tiny_row[2] == 2 and len(tiny_row) == len(hc.DESIGN_HEADERS)
    chart = out["chart"]
    assert {t.name for t in chart.data} == {"digits", "shapes"}
    assert sum(len(t.x) for t in chart.data) == 3 and all(x > 0 for t in chart.data for x in t.x)
    assert [v for _label, v in out["run_choices"]] == [3, 2, 1]

    curves = hc.on_pick_runs([1, 2], store)
    assert len(curves.data) == 4 and list(curves.data[0].x) == [5, 10]
    assert len(hc.on_pick_runs([], store).data) == 0 and len(hc.on_pick_runs([99], store).data) == 0

    design_id = next(v for label, v in out["design_choices"] if "tiny-ui" in label)
    loaded = hc.on_load_design(design_id, store)
    assert "Loaded design" in loaded["status"] and load_design(loaded["editor"]).name == "tiny-ui"
    assert load_design(loaded["editor"]).input.size == 16  # the design as given, not re-sized
    assert "editor" not in hc.on_load_design(None, store) and "no design 99" in hc.on_load_design(99, store)["status"]


def test_tabs_lay_out_inside_blocks() -> None:
    from explorer.ui.history_tab import build_history_tab
    from explorer.ui.training_tab import build_training_tab

    with gr.Blocks() as demo:
        spec = gr.State(TINY_YAML)
        editor = gr.Code(TINY_YAML, language="yaml")
        with gr.Tab("Training"):
            build_training_tab(spec)
        with gr.Tab("History"):
            build_history_tab(spec, editor)
    fns = {d["api_name"] for d in demo.get_config_file()["dependencies"]}
    assert {"on_start_training", "on_cancel_training", "on_refresh", "on_load_design", "on_pick_runs"} <= fns


def test_ui_store_defaults_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPLORER_DB", str(tmp_path / "env-ui.sqlite"))
    s = tc.ui_store()
    assert s.path == (tmp_path / "env-ui.sqlite").resolve() and tc.ui_store() is s
