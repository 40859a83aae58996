"""int8 quantization (``explorer quantize``) and timing any ONNX file (``explorer latency FILE.onnx``).

A tiny design is trained for a few steps on digits at 16×16 and stored; every test quantizes that
run. Bad input is one line, exit 2, and leaves no file behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from explorer import quantize as q
from explorer.cli import main
from explorer.store import Store
from explorer.train import make_config, train

from tiny_designs import tiny_design

pytestmark = pytest.mark.slow  # a training run and ONNX Runtime calibration: several seconds on a busy CPU


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("quantize")
    db = root / "runs.sqlite"
    spec_path = root / "tiny.yaml"
    import yaml

    spec_path.write_text(yaml.safe_dump(tiny_design("tiny-q")))
    with Store(db) as store:
        result = train(tiny_design("tiny-q"), make_config(dataset="digits", steps=20, input_size=16, seed=0,
                                                          eval_every=0, bn_images=256), store=store)
    return {"db": db, "spec": str(spec_path), "run": result.run_id, "root": root, "val": result.val_accuracy}


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


def test_quantize_a_run_reports_both_graphs_and_writes_int8(trained: dict[str, Any], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tiny-int8.onnx"
    code, stdout, err = _cli(capsys, "quantize", trained["spec"], "--run", str(trained["run"]), "--db",
                             str(trained["db"]), "-o", str(out), "--runs", "5", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert list(result)[:8] == list(q.JSON_KEYS)
    assert result["path"] == str(out) and out.stat().st_size == result["int8_bytes"]
    for key in ("fp32_accuracy", "int8_accuracy", "top1_agreement"):
        assert 0.0 <= result[key] <= 1.0
    # the fp32 graph's accuracy is the trained network's (ONNX Runtime vs PyTorch on the same split)
    assert result["fp32_accuracy"] == pytest.approx(trained["val"], abs=0.01)
    assert result["val_images"] == 359 and result["calib_images"] == 100 and result["dataset"] == "digits"
    assert result["fp32_ms"] > 0 and result["int8_ms"] > 0
    model = onnx.load(str(out))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # per-channel weights: each 4-D (conv) weight is int8 with one scale per output channel
    inits = {i.name: i for i in model.graph.initializer}
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    pairs = [(inits[n.input[0]], inits[n.input[1]]) for n in model.graph.node if n.op_type == "DequantizeLinear"
             and n.output[0] in conv_weights]
    assert pairs and all(w.data_type == onnx.TensorProto.INT8 for w, _ in pairs)
    assert all(list(s.dims) == [w.dims[0]] for w, s in pairs)
    assert _leftovers(tmp_path) == []
    # the int8 file is timed by `explorer latency FILE.onnx` like any design
    code, stdout, err = _cli(capsys, "latency", str(out), "--runs", "3", "--warmup", "1", "--json")
    assert code == 0, err
    assert json.loads(stdout)["median_ms"] > 0


def test_human_output_and_agreement_of_identical_graphs(trained: dict[str, Any], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = _cli(capsys, "quantize", trained["spec"], "--run", str(trained["run"]), "--db",
                           str(trained["db"]), "-o", str(tmp_path / "a.onnx"), "--runs", "3")
    assert code == 0
    assert "int8" in stdout and "top-1 agreement" in stdout and "speed-up" in stdout
    # agreement is the share of images whose top-1 is the same: a graph agrees with itself everywhere
    images = [np.random.default_rng(i).standard_normal((3, 16, 16)).astype(np.float32) for i in range(4)]
    data = (tmp_path / "a.onnx").read_bytes()
    assert (q.onnx_top1(data, images) == q.onnx_top1(data, images)).all()


@pytest.mark.parametrize(("argv", "message"), [
    ([], "needs trained weights"),
    (["--run", "999"], "no run 999"),
    (["--calib", "50", "--run", "RUN"], "at least 100"),
    (["--calib", "5000", "--run", "RUN"], "has only 1438 training images"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(trained: dict[str, Any], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str], argv: list[str],
                                                          message: str) -> None:
    out = tmp_path / "x.onnx"
    argv = [a.replace("RUN", str(trained["run"])) for a in argv]
    code, stdout, err = _cli(capsys, "quantize", trained["spec"], *argv, "--db", str(trained["db"]), "-o", str(out))
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not out.exists() and _leftovers(tmp_path) == []


def test_a_run_of_another_design_is_refused(trained: dict[str, Any], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.yaml"
    import yaml

    other.write_text(yaml.safe_dump(tiny_design("tiny-q", width=8)))
    code, _, err = _cli(capsys, "quantize", str(other), "--run", str(trained["run"]), "--db", str(trained["db"]),
                        "-o", str(tmp_path / "x.onnx"))
    assert code == 2 and "another design" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, "quantize", trained["spec"], "--run", "1", "--db", str(trained["db"]),
                        "-o", str(tmp_path / "missing" / "x.onnx"))
    assert code == 2 and "does not exist" in err


def test_a_graph_that_fails_to_quantize_leaves_nothing(trained: dict[str, Any], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "x.onnx"

    def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Node (Conv_3) unsupported")

    import onnxruntime.quantization as oq

    monkeypatch.setattr(oq, "quantize_static", broken)
    with Store(trained["db"]) as store, pytest.raises(q.QuantizeError, match="the graph does not quantize"):
        q.quantize(trained["spec"], out, run_id=trained["run"], store=store, runs=2)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    # a failure after the file was written into its temporary place removes the temporary file too
    monkeypatch.setattr(q.os, "replace", lambda *_a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        q._write_atomically(out, b"data")
    assert list(tmp_path.iterdir()) == []


def test_quantize_refuses_too_few_calibration_images_directly() -> None:
    with pytest.raises(q.QuantizeError, match="at least 100"):
        q.quantize_onnx(b"", [np.zeros((3, 8, 8), np.float32)] * 10)
    with pytest.raises(q.QuantizeError, match="calibration method"):
        q.quantize_onnx(b"", [], method="magic")


def test_train_steps_trains_and_records_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.sqlite"
    code, stdout, err = _cli(capsys, "quantize", "mobilenetv3_small", "--train-steps", "2", "--db", str(db),
                             "-o", str(tmp_path / "m.onnx"), "--runs", "2", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    with Store(db) as store:
        runs = store.list_runs()
    assert [r.id for r in runs] == [result["run_id"]] and runs[0].status == "finished"
    assert (tmp_path / "m.onnx").is_file()


def test_latency_of_an_onnx_file_with_external_data_is_refused(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from onnx.external_data_helper import convert_model_to_external_data

    from explorer.design import load_design
    from explorer.export import onnx_bytes

    model = onnx.load_from_string(onnx_bytes(load_design(tiny_design())))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    onnx.save(model, str(tmp_path / "ext.onnx"))
    code, stdout, err = _cli(capsys, "latency", str(tmp_path / "ext.onnx"), "--runs", "2")
    assert code == 2 and stdout == "" and "external file" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, "latency", str(tmp_path / "none.onnx"))
    assert code == 2 and "no ONNX file" in err
    (tmp_path / "junk.onnx").write_bytes(b"not a model at all")
    code, _, err = _cli(capsys, "latency", str(tmp_path / "junk.onnx"), "--runs", "2")
    assert code == 2 and "junk.onnx" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, "latency", str(tmp_path / "ext.onnx"), "--predict", "cortex-a72")
    assert code == 2 and "--predict needs a design" in err


def test_ui_quantize_section_from_the_latest_run(trained: dict[str, Any], tmp_path: Path) -> None:
    from explorer.design import load_design
    from explorer.ui import quantize_callbacks as qc

    spec_yaml = load_design(tiny_design("tiny-q")).to_yaml()
    seen: list[float] = []
    result = qc.on_quantize(spec_yaml, "latest run", db=trained["db"], out_dir=tmp_path, runs=3,
                            progress=lambda f, _d: seen.append(f))
    assert result["status"].startswith("**tiny-q** int8 from run"), result["status"]
    assert [row[0] for row in result["table"]] == ["fp32", "int8"] and len(result["table"][0]) == len(qc.TABLE_HEADERS)
    assert result["table"][1][2] == pytest.approx(100 * result["result"]["top1_agreement"], abs=0.05)
    assert Path(result["file"]).is_file() and Path(result["file"]).parent == tmp_path
    assert seen[0] == 0.0 and seen[-1] == 1.0
    # another design has no run: one line says what to do; bad settings likewise
    other = load_design(tiny_design("other", width=8)).to_yaml()
    for args in ((other, "latest run"), (spec_yaml, "short training", 0), (spec_yaml, "magic")):
        bad = qc.on_quantize(*args, db=trained["db"], out_dir=tmp_path)  # type: ignore[arg-type]
        assert bad["status"].startswith("⚠") and bad["file"] is None and "\n" not in bad["status"]
    assert "Training tab" in qc.on_quantize(other, "latest run", db=trained["db"])["status"]


def test_the_latency_tab_builds_with_the_quantize_section() -> None:
    import gradio as gr

    from explorer.ui.latency_tab import build_latency_tab

    with gr.Blocks() as demo:
        build_latency_tab(gr.State(""))
    ids = {getattr(c, "elem_id", None) for c in demo.blocks.values()}
    assert {"lat-quant-btn", "lat-quant-table", "lat-quant-file", "lat-quant-source", "lat-quant-board"} <= ids


@pytest.fixture(scope="module")
def agent() -> Any:
    """A board agent on a free local port (token ``t0k``): yields its port."""
    import socket
    import subprocess
    import sys
    import time

    from explorer.latency.client import RemoteError, health

    script = Path(__file__).resolve().parents[1] / "explorer" / "latency" / "agent.py"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, str(script), "--token", "t0k", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health(f"http://127.0.0.1:{port}", "t0k", timeout=2)
                break
            except RemoteError:
                assert proc.poll() is None and time.monotonic() < deadline, "the agent did not start"
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_onnx_file_is_timed_on_a_board_by_the_same_agent(tmp_path: Path, agent: int,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from explorer.design import load_design
    from explorer.export import onnx_bytes

    (tmp_path / "tiny.onnx").write_bytes(onnx_bytes(load_design(tiny_design())))
    code, stdout, err = _cli(capsys, "latency", str(tmp_path / "tiny.onnx"), "--remote",
                             f"http://127.0.0.1:{agent}", "--token", "t0k", "--runs", "3", "--warmup", "1", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["runs"] == 3 and result["median_ms"] > 0


def test_ui_quantize_times_both_graphs_on_an_allowed_board(trained: dict[str, Any], tmp_path: Path, agent: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from explorer.design import load_design
    from explorer.ui import quantize_callbacks as qc

    spec_yaml = load_design(tiny_design("tiny-q")).to_yaml()
    board = {"on_board": True, "host": "127.0.0.1", "port": agent, "token": "t0k"}
    # not allowed where the server runs: refused before any work (no file, no run)
    refused = qc.on_quantize(spec_yaml, "latest run", db=trained["db"], out_dir=tmp_path, runs=3, **board)
    assert refused["status"].startswith("⚠") and "not one of the boards" in refused["status"]
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("EXPLORER_BOARDS", f"127.0.0.1:{agent}")
    wrong = qc.on_quantize(spec_yaml, "latest run", db=trained["db"], out_dir=tmp_path, runs=3,
                           **(board | {"token": "nope"}))
    assert wrong["status"].startswith("⚠") and "token" in wrong["status"] and list(tmp_path.iterdir()) == []
    result = qc.on_quantize(spec_yaml, "latest run", db=trained["db"], out_dir=tmp_path, runs=3, **board)
    on = result["result"]["board"]
    assert on["url"] == f"http://127.0.0.1:{agent}" and on["fp32_ms"] > 0 and on["int8_ms"] > 0
    assert on["speedup"] == pytest.approx(on["fp32_ms"] / on["int8_ms"])
    assert [row[4] for row in result["table"]] == [round(on["fp32_ms"], 3), round(on["int8_ms"], 3)]
    assert "on the board" in result["status"]
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-q-int8.onnx"]  # the fp32 copy for the board is gone


# ----------------------------------------------------------------------------- units kept in fp32


def _conv_kinds(model: onnx.ModelProto) -> dict[str, bool]:
    """Conv node name -> whether it reads int8 (its input and weight both come out of DequantizeLinear)."""
    dq_out = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return {n.name: n.input[0] in dq_out and n.input[1] in dq_out for n in model.graph.node if n.op_type == "Conv"}


def test_fp32_units_stay_fp32_in_the_graph(trained: dict[str, Any], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "stem-fp32.onnx"
    code, stdout, err = _cli(capsys, "quantize", trained["spec"], "--run", str(trained["run"]), "--db",
                             str(trained["db"]), "-o", str(out), "--runs", "2", "--fp32", "stem", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["fp32_units"] == ["stem.b1"] and result["method"] == "minmax"
    convs = _conv_kinds(onnx.load(str(out)))
    stem = {name: int8 for name, int8 in convs.items() if name.startswith("/stem/")}
    rest = {name: int8 for name, int8 in convs.items() if not name.startswith("/stem/")}
    assert stem and not any(stem.values())  # the stem's conv reads an fp32 tensor and fp32 weights
    assert rest and all(rest.values())  # every other conv is still quantized
    weight = {i.name: i for i in onnx.load(str(out)).graph.initializer}
    stem_conv = next(n for n in onnx.load(str(out)).graph.node if n.name in stem)
    assert weight[stem_conv.input[1]].data_type == onnx.TensorProto.FLOAT
    # a block type and a unit name select the same way; the human output names the kept units
    code, stdout, err = _cli(capsys, "quantize", trained["spec"], "--run", str(trained["run"]), "--db",
                             str(trained["db"]), "-o", str(tmp_path / "b.onnx"), "--runs", "2",
                             "--fp32", "attention_condenser,s1.b2")
    assert code == 0, err
    assert "kept in fp32: s1.b1, s1.b2" in stdout
    convs = _conv_kinds(onnx.load(str(tmp_path / "b.onnx")))
    assert all(v for k, v in convs.items() if k.startswith("/stem/"))
    assert not any(v for k, v in convs.items() if k.startswith("/stages.0/"))


def test_a_bad_fp32_name_is_one_line_listing_the_valid_ones(trained: dict[str, Any], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "quantize", trained["spec"], "--run", str(trained["run"]), "--db",
                        str(trained["db"]), "-o", str(tmp_path / "x.onnx"), "--fp32", "s9")
    assert code == 2 and err.count("\n") == 1
    assert "--fp32 's9'" in err and "stem, s1, head" in err and "attention_condenser" in err
    assert list(tmp_path.iterdir()) == []
    # refused before any store is opened: a new --db path is not created
    code, _, err = _cli(capsys, "quantize", trained["spec"], "--run", "1", "--db", str(tmp_path / "new.sqlite"),
                        "-o", str(tmp_path / "x.onnx"), "--fp32", "s1,nope")
    assert code == 2 and "'nope'" in err and list(tmp_path.iterdir()) == []
    code, _, err = _cli(capsys, "quantize", trained["spec"], "--run", str(trained["run"]), "--db",
                        str(trained["db"]), "-o", str(tmp_path / "x.onnx"), "--method", "magic")
    assert code == 2 and "minmax, percentile, entropy" in err and err.count("\n") == 1


def test_fp32_units_resolves_stages_units_and_types() -> None:
    from explorer.design import load_design

    spec = load_design(tiny_design("t"))
    assert q.fp32_units(spec, ["stem"]) == ["stem.b1"]
    assert q.fp32_units(spec, ["head", "s1.b1"]) == ["stages.0.b1", "head"]  # execution order
    assert q.fp32_units(spec, ["dwsep"]) == ["stages.0.b2"]
    assert q.fp32_units(spec, []) == []
    with pytest.raises(q.QuantizeError, match="names no unit of t"):
        q.fp32_units(spec, ["b1"])
