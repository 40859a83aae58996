"""The explorer's callbacks, driven as plain functions (no browser, no server)."""

from __future__ import annotations

import functools
import hashlib
import html
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from explorer.analysis import analyze
from explorer.design import load_design, load_preset
from explorer.edit import BlockRef, unit_refs
from explorer.history import History
from explorer.mutate import apply_mutation
from explorer.spec import MAX_SPEC_BYTES, dump_spec
from explorer.ui import callbacks as cb
from explorer.ui import forms, render


def _value(metrics: str, key: str) -> int:
    """The exact number a metric card carries (``data-value``)."""
    match = re.search(rf'id="metric-{key}" data-value="(\d+)"', metrics)
    assert match, f"no {key} card in {metrics[:200]}"
    return int(match.group(1))


@pytest.fixture(scope="module")
def start() -> dict:
    return cb.initial_values()


def test_initial_page_shows_attendnext(start: dict) -> None:
    a = analyze(load_preset("attendnext"))
    assert start["preset"] == "attendnext"
    assert _value(start["metrics"], "params") == a.params and _value(start["metrics"], "macs") == a.macs
    assert _value(start["metrics"], "peak") == a.peak_activation_bytes
    assert _value(start["metrics"], "fp32") == 4 * a.params and _value(start["metrics"], "int8") == a.params
    assert f"{a.params / 1e6:.3f} M" in start["metrics"]
    assert start["editor"] == start["spec_yaml"] == dump_spec(load_preset("attendnext"))
    assert len(start["table"]) == len(a.blocks) and start["table"][0][0] == "stem.b1"
    assert start["picker"]["value"] == "1:1" and not start["history"].can_undo
    assert Path(start["download"]).read_text() == start["spec_yaml"]


def test_mutation_updates_numbers_and_history(start: dict) -> None:
    out = cb.on_mutate("wider", start["spec_yaml"], start["history"], "1:1")
    expected = analyze(apply_mutation(load_preset("attendnext"), "wider", 1))
    assert _value(out["metrics"], "params") == expected.params
    assert "Wider at stage 1" in out["status"] and 'class="delta up"' in out["metrics"]
    assert out["history"].can_undo and out["undo_btn"]["interactive"] and not out["redo_btn"]["interactive"]
    assert out["editor"] == out["spec_yaml"] != start["spec_yaml"]
    back = cb.on_undo(out["spec_yaml"], out["history"], "1:1")
    assert back["spec_yaml"] == start["spec_yaml"] and "Undid: Wider at stage 1" in back["status"]
    assert back["redo_btn"]["interactive"]
    again = cb.on_redo(back["spec_yaml"], back["history"], "1:1")
    assert again["spec_yaml"] == out["spec_yaml"]
    assert cb.on_redo(again["spec_yaml"], again["history"], "1:1") == {"status": "nothing to redo"}


def test_refused_mutation_changes_only_the_error_box(start: dict) -> None:
    out = cb.on_mutate("kernel_up", start["spec_yaml"], start["history"], "head")
    assert set(out) == {"edit_error", "status"}
    assert "the head has no mutations; select a block inside a stage" in out["edit_error"]
    out = cb.on_mutate("expand_up", start["spec_yaml"], start["history"], "1:1")
    assert "only inverted residuals (ir) have an expansion ratio" in out["edit_error"]
    assert "spec_yaml" not in out and "metrics" not in out


def _form_slots(spec_yaml: str, key: str) -> list:
    """What the browser's form slots hold after a block is selected: (number, choice, switch) per slot."""
    shown = cb.on_select_block(key, spec_yaml)
    values = []
    for i in range(forms.FORM_SLOTS):
        for name in forms.slot_keys(i):
            update = shown[name]
            values.append(update.get("value") if update.get("visible") else None)
    return values


def test_form_apply_and_impossible_parameter(start: dict) -> None:
    spec_yaml = start["spec_yaml"]
    slots = _form_slots(spec_yaml, "2:2")  # AttendNeXt stage 2, block 2: an inverted residual
    assert slots[0] == 40  # slot 0 is 'out', a number box
    slots[3] = 5.0  # slot 1 is 'kernel'
    out = cb.on_apply_form(spec_yaml, start["history"], "2:2", "", *slots)
    assert load_design(out["spec_yaml"]).stages[1].blocks[1].params["kernel"] == 5
    assert "Edited stage 2, block 2" in out["status"]
    slots[3] = 4.0
    bad = cb.on_apply_form(spec_yaml, start["history"], "2:2", "", *slots)
    assert "spec_yaml" not in bad and bad["edit_error"] == ""  # refused; the message sits beside the form
    assert "stage 2, block 2: kernel 4 is even; use 1, 3, 5, 7, 9 or 11" in bad["form_error"]
    assert bad["slot1_number"]["info"] == "⚠ stage 2, block 2: kernel 4 is even; use 1, 3, 5, 7, 9 or 11"
    assert "slot0_number" not in bad  # the other fields keep their hints
    slots[0] = None
    missing = cb.on_apply_form(spec_yaml, start["history"], "2:2", "", *slots)
    assert "out is missing; enter a whole number (1 to 4096)" in missing["form_error"]
    assert missing["slot0_number"]["info"].startswith("⚠ out is missing")
    slots[0], slots[3] = 40, 3.0
    fixed = cb.on_apply_form(spec_yaml, start["history"], "2:2", "", *slots)
    assert fixed["form_error"] == "" and "nothing changed" in fixed["status"]  # kernel 3 is what it was


def test_form_shows_the_block_schema(start: dict) -> None:
    shown = cb.on_select_block("1:1", start["spec_yaml"])  # a DC-AC
    assert "attention_condenser" in shown["form_title"]
    assert shown["slot0_choice"]["visible"] and shown["slot0_choice"]["choices"] == ["1", "2"]
    assert shown["slot0_choice"]["value"] == "2" and not shown["slot0_number"]["visible"]
    assert shown["stage_repeat"]["value"] == 1 and shown["stage_name"]["value"] == "dcac-112"
    head = cb.on_select_block("head", start["spec_yaml"])
    assert "classifier" in head["form_title"] and not head["stage_repeat"]["interactive"]


def test_broken_yaml_shows_the_error_and_keeps_the_design(start: dict) -> None:
    out = cb.on_editor_change("name: [unclosed", start["spec_yaml"], start["history"], "1:1")
    assert "YAML error at line 1" in out["yaml_error"] and "spec_yaml" not in out and "editor" not in out
    assert out["draft"] == "name: [unclosed"  # kept
    impossible = start["spec_yaml"].replace("kernel: 5", "kernel: 4", 1)
    out = cb.on_editor_change(impossible, start["spec_yaml"], start["history"], "1:1")
    assert re.search(r"stage \d, block \d: kernel 4 is even", out["yaml_error"])
    # an edit made elsewhere rewrites the editor but says the draft is kept, and it can come back
    mutated = cb.on_mutate("deeper", start["spec_yaml"], start["history"], "1:1", impossible)
    assert mutated["draft_note"] == render.DRAFT_NOTE and mutated["editor"] == mutated["spec_yaml"]
    assert cb.on_restore_draft(impossible) == {"editor": impossible, "draft_note": ""}


def test_valid_yaml_applies_without_rewriting_the_editor(start: dict) -> None:
    text = start["spec_yaml"].replace("repeat: 1", "repeat: 2", 1)
    out = cb.on_editor_change(text, start["spec_yaml"], start["history"], "1:1")
    assert "editor" not in out and load_design(out["spec_yaml"]).stages[0].repeat == 2
    assert out["draft"] == "" and out["history"].can_undo
    # the app's own update echoed back by the editor (Code strips the text) changes nothing
    echo = cb.on_editor_change(out["spec_yaml"].strip(), out["spec_yaml"], out["history"], "1:1")
    assert echo == {"yaml_error": ""}


def test_structure_callbacks(start: dict) -> None:
    y, h = start["spec_yaml"], start["history"]
    added = cb.on_add_block("attention_condenser", y, h, "4:2")
    assert added["picker"]["value"] == "4:3"
    assert load_design(added["spec_yaml"]).stages[3].blocks[2].type == "attention_condenser"
    moved = cb.on_move_block(-1, added["spec_yaml"], added["history"], "4:3")
    assert moved["picker"]["value"] == "4:2"
    removed = cb.on_remove_block(moved["spec_yaml"], moved["history"], "4:2")
    assert removed["spec_yaml"] == y
    stage = cb.on_add_stage("ir", y, h, "5:1")
    assert len(load_design(stage["spec_yaml"]).stages) == len(load_design(y).stages) + 1
    assert stage["picker"]["value"] == "6:1"
    gone = cb.on_remove_stage(stage["spec_yaml"], stage["history"], "6:1")
    assert gone["spec_yaml"] == y
    typed = cb.on_replace_type("dwsep", y, h, "2:2")
    assert load_design(typed["spec_yaml"]).stages[1].blocks[1].type == "dwsep"
    staged = cb.on_apply_stage("wide", 3, y, h, "2:2")
    assert load_design(staged["spec_yaml"]).stages[1].repeat == 3
    assert "repeat 0 is too small" in cb.on_apply_stage("x", 0, y, h, "2:2")["edit_error"]
    one_left = cb.on_remove_block(y, h, "1:2")["spec_yaml"]
    assert "only block of stage 1" in cb.on_remove_block(one_left, h, "1:1")["edit_error"]
    assert "pick a block type" in cb.on_add_block(None, y, h, "1:1")["edit_error"]


def test_table_click_selects_the_written_block(start: dict) -> None:
    spec = load_design(start["spec_yaml"])
    first_repeat_row = next(i for i, row in enumerate(start["table"]) if row[1] == "stage 1, block 2")
    out = cb.on_select_row(first_repeat_row, start["spec_yaml"])
    assert out["picker"]["value"] == "1:2" and "dwsep" in out["form_title"]
    assert cb.on_select_row(10_000, start["spec_yaml"]) == {}
    assert len(start["table"]) == len(unit_refs(spec))


def test_random_mutation_is_valid_and_draws_from_the_session(start: dict) -> None:
    import random

    a = cb.on_random_mutate(start["spec_yaml"], start["history"], "1:1", seed=3)
    b = cb.on_random_mutate(start["spec_yaml"], start["history"], "1:1", seed=3)
    assert a["spec_yaml"] == b["spec_yaml"] != start["spec_yaml"]  # a fixed seed is a fixed draw
    # the session's generator is not seeded from the design: pressed again after Undo, it draws on
    rng = random.Random(11)
    drawn = set()
    for _ in range(6):
        out = cb.on_random_mutate(start["spec_yaml"], start["history"], "1:1", rng=rng)
        back = cb.on_undo(out["spec_yaml"], out["history"], "1:1")
        assert back["spec_yaml"] == start["spec_yaml"]
        drawn.add(out["spec_yaml"])
    assert len(drawn) >= 3
    assert a["status"].count("Random:") == 1
    load_design(a["spec_yaml"])
    c = cb.on_random_mutate(start["spec_yaml"], start["history"], "1:1", seed=7)
    load_design(c["spec_yaml"])


def test_presets_empty_and_progress(start: dict) -> None:
    seen: list[float] = []
    out = cb.on_load_preset("mobilenetv3_small", start["spec_yaml"], start["history"], "",
                            progress=lambda f, d: seen.append(f))
    assert _value(out["metrics"], "params") == analyze(load_preset("mobilenetv3_small")).params
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    assert out["preset"] == "mobilenetv3_small" and "mobilenetv3_small" in out["status"]
    assert cb.on_load_preset("attendnext", start["spec_yaml"], start["history"]) == {}  # already it: no message
    refused = cb.on_load_preset("nope", start["spec_yaml"], start["history"])["edit_error"]
    assert "no preset named 'nope'" in html.unescape(refused)
    empty = cb.on_new_empty(start["spec_yaml"], start["history"])
    assert load_design(empty["spec_yaml"]).stages == [] and empty["history"].can_undo
    assert empty["preset"] is None  # the preset dropdown no longer names a preset
    stem = cb.on_mutate("wider", empty["spec_yaml"], empty["history"], "0:1")
    assert "the stem has no mutations" in stem["edit_error"]


@pytest.fixture()
def uploads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Gradio's upload folder for this test (``GRADIO_TEMP_DIR``): where Gradio saves what a browser uploads."""
    folder = tmp_path / "gradio-uploads"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


def _uploaded(uploads: Path, name: str) -> Path:
    """Where Gradio would save an uploaded file called ``name`` (a folder per upload, then the name)."""
    folder = uploads / hashlib.sha1(name.encode()).hexdigest()
    folder.mkdir(exist_ok=True)
    return folder / name


def test_download_and_upload(uploads: Path, start: dict) -> None:
    mutated = cb.on_mutate("deeper", start["spec_yaml"], start["history"], "1:1")
    saved = Path(mutated["download"])
    assert saved.suffix == ".yaml" and saved.read_text() == mutated["spec_yaml"]
    copy = _uploaded(uploads, "mine.yaml")
    copy.write_text(saved.read_text())
    loaded = cb.on_upload(str(copy), start["spec_yaml"], start["history"])
    assert loaded["spec_yaml"] == mutated["spec_yaml"] and loaded["upload"] is None
    assert "Loaded mine.yaml" in loaded["status"]
    broken = _uploaded(uploads, "broken.yaml")
    broken.write_text("stages: [\n")
    out = cb.on_upload(str(broken), start["spec_yaml"], start["history"])
    assert "broken.yaml: YAML error at line" in out["edit_error"] and "spec_yaml" not in out
    huge = _uploaded(uploads, "huge.yaml")
    huge.write_bytes(b"#" * (MAX_SPEC_BYTES + 1))
    out = cb.on_upload(str(huge), start["spec_yaml"], start["history"])
    assert "a spec is at most 1024 KiB" in out["edit_error"]
    python = _uploaded(uploads, "evil.yaml")
    python.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    out = cb.on_upload(str(python), start["spec_yaml"], start["history"])
    assert "evil.yaml" in out["edit_error"] and "spec_yaml" not in out  # safe_load refuses the tag
    assert cb.on_upload(None, start["spec_yaml"], start["history"]) == {}


def test_upload_reads_only_files_gradio_received(uploads: Path, tmp_path: Path, start: dict) -> None:
    """A client can name any path through the API; only files in Gradio's upload folder are read."""
    secret = tmp_path / "secret.json"
    secret.write_text('{"name": "s3cr3t-value", "api_key": "s3cr3t-value"}')
    (uploads / "link").mkdir()
    (uploads / "link" / "design.json").symlink_to(secret)  # a link inside the folder must not lead out
    named = [str(secret), "/etc/passwd", "/etc/hostname.yaml", str(tmp_path / "missing.json"),
             str(uploads / ".." / "secret.json"), str(uploads), str(uploads / "link" / "design.json"),
             str(uploads / "nothing-here" / "x.yaml")]
    answers = [cb.on_upload(path, start["spec_yaml"], start["history"]) for path in named]
    for path, out in zip(named, answers, strict=True):
        assert set(out) == {"edit_error", "status", "upload"} and out["upload"] is None, path
        assert html.unescape(out["edit_error"]) == html.unescape(answers[0]["edit_error"]), path  # one answer
        assert cb.UPLOAD_REFUSED in html.unescape(out["edit_error"]), path
        shown = out["edit_error"] + out["status"]
        assert "s3cr3t" not in shown and "secret" not in shown and "passwd" not in shown, path  # nothing echoed
        assert "exist" not in shown and "No such file" not in shown, path
    # the check itself, with an explicit folder: inside only, links resolved
    inside = _uploaded(uploads, "ok.yaml")
    inside.write_text(start["spec_yaml"])
    assert cb.received_upload(inside, uploads) == inside.resolve()
    assert cb.received_upload(secret, uploads) is None and cb.received_upload(uploads, uploads) is None
    wrong_type = _uploaded(uploads, "notes.txt")
    wrong_type.write_text(start["spec_yaml"])
    refused = cb.on_upload(str(wrong_type), start["spec_yaml"], start["history"])
    assert "notes.txt: upload a design as .yaml, .yml or .json" in refused["edit_error"]


def test_history_none_starts_fresh(start: dict) -> None:
    out = cb.on_mutate("deeper", start["spec_yaml"], None, "1:1")
    assert isinstance(out["history"], History) and out["history"].past[0].text == start["spec_yaml"]


def test_app_wires_every_output_and_binds_localhost() -> None:
    from explorer.cli import build_parser
    from explorer.commands.ui import register  # noqa: F401  (the CLI's defaults are checked below)
    from explorer.ui import app

    assert inspect.signature(app.launch).parameters["host"].default == "127.0.0.1"
    assert build_parser().parse_args(["ui"]).host == "127.0.0.1"
    demo = app.build_app()
    names = set(demo.output_names)
    slots = {k for i in range(forms.FORM_SLOTS) for k in forms.slot_keys(i)}
    assert set(render.FULL_KEYS) | slots | {"draft", "draft_note", "upload"} <= names
    ids = {c.get("props", {}).get("elem_id") for c in demo.config["components"]}
    assert {"metrics", "yaml-editor", "yaml-error", "edit-error", "download", "upload", "preset"} <= ids
    assert BlockRef.parse("head").is_head


def test_an_edit_shows_its_numbers_first_and_parks_the_rest(start: dict) -> None:
    import gradio as gr

    from explorer.ui import app

    out = app._Outputs()
    for name in ("metrics", "status", "spec_yaml", "bars", "editor"):
        out.add(name, name)  # stand-ins for components: only the mapping matters here
    out.pending = "pending"
    result = cb.on_mutate("wider", start["spec_yaml"], start["history"], "1:1")
    first = out.split(result)
    assert first["metrics"] == result["metrics"] and first["spec_yaml"] == result["spec_yaml"]
    assert "bars" not in first and "editor" not in first
    assert set(first["pending"]) == {"bars", "editor"}  # only outputs the page has are parked
    assert out.slow == ["bars", "editor"]
    assert out.flush(first["pending"]) == [result["bars"], result["editor"]]
    assert "download" in app.FAST_OUTPUTS  # "Save YAML" right after an edit saves that edit
    skipped = out.flush(None)  # nothing parked: every slow view is left as it is
    assert len(skipped) == 2 and all(v == gr.skip() for v in skipped)


@pytest.mark.slow
def test_launch_keeps_no_run_history_in_the_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    import gradio as gr

    from explorer.ui import app

    has_run_history = "run_history" in inspect.signature(gr.Blocks.launch).parameters
    seen: dict = {}
    original = gr.Blocks.launch

    @functools.wraps(original)  # keeps the real signature, which launch() inspects
    def fake_launch(self: gr.Blocks, **kw: Any) -> None:
        seen.update(kw)

    monkeypatch.setattr(gr.Blocks, "launch", fake_launch)
    app.launch(port=7999)
    assert seen["server_name"] == "127.0.0.1" and seen["server_port"] == 7999 and seen["share"] is False
    assert seen.get("run_history") is (False if has_run_history else None)
