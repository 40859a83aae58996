"""Work that is never lost: links in the page, "My designs" in the store, derived names; and rough edges.

Driven as plain functions (no browser). Expected numbers come from ``explorer.analysis``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from explorer.analysis import analyze
from explorer.design import load_design, load_preset
from explorer.link import decode_design, encode_design, read_query
from explorer.spec import dump_spec
from explorer.store import SCHEMA_VERSION, Store, apply_migration, spec_hash
from explorer.ui import callbacks as cb
from explorer.ui import designs as dc
from explorer.ui.state import derived_design, preset_of


@pytest.fixture(scope="module")
def start() -> dict:
    return cb.initial_values()


def _query(link: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(link.lstrip("?")).items()}


def test_every_shown_design_carries_its_link_and_preset(start: dict) -> None:
    q = _query(start["link"])
    assert decode_design(q["design"]) == load_preset("attendnext") and q["block"] == "1:1"
    assert start["preset"] == "attendnext"
    out = cb.on_mutate("wider", start["spec_yaml"], start["history"], "2:1")
    q = _query(out["link"])
    assert dump_spec(decode_design(q["design"])) == out["spec_yaml"] and q["block"] == "2:1"
    assert out["preset"] is None  # an edited preset is no preset: the dropdown clears
    picked = cb.on_select_block("3:2", out["spec_yaml"])
    assert _query(picked["link"])["block"] == "3:2"


def test_an_edited_preset_gets_its_own_name_and_description(start: dict) -> None:
    out = cb.on_mutate("wider", start["spec_yaml"], start["history"], "2:1")
    spec = load_design(out["spec_yaml"])
    assert spec.name == "attendnext-edit-1" and "4.0 M" not in spec.description
    assert "no longer apply" in spec.description
    again = cb.on_mutate("narrower", out["spec_yaml"], out["history"], "3:1")
    assert load_design(again["spec_yaml"]).name == "attendnext-edit-1"  # keeps the derived name
    # undone by hand (the inverse edit), it is the preset again, with the preset's own words
    back = derived_design(load_preset("attendnext").model_copy(update={"name": "attendnext-edit-4"}), 5)
    assert back == load_preset("attendnext")
    assert preset_of(dump_spec(load_preset("fbnet_c"))) == "fbnet_c" and preset_of("name: x") is None


def test_a_link_opens_its_design_and_block(start: dict) -> None:
    small = load_preset("mobilenetv3_small")
    opened = read_query({"design": encode_design(small), "block": "2:1"})
    out = cb.on_open_link(opened, start["spec_yaml"], start["history"])
    assert out["spec_yaml"] == dump_spec(small) and out["picker"]["value"] == "2:1"
    assert f'data-value="{analyze(small).params}"' in out["metrics"] and out["preset"] == "mobilenetv3_small"
    same = cb.on_open_link(read_query({"design": encode_design(load_preset("attendnext")), "block": "3:1"}),
                           start["spec_yaml"], start["history"])
    assert "spec_yaml" not in same and same["picker"]["value"] == "3:1"  # only the selection changes
    plain = cb.on_open_link(read_query({}), start["spec_yaml"], start["history"])
    assert plain.keys() == {"link"} and _query(plain["link"])["design"]


def test_opening_a_link_leaves_nothing_to_undo(start: dict) -> None:
    """A page opened from a link starts at the link's design: one clean step, Undo off (no default beneath)."""
    small = load_preset("mobilenetv3_small")
    out = cb.on_open_link(read_query({"design": encode_design(small)}), start["spec_yaml"], start["history"])
    history = out["history"]
    assert history.present.text == dump_spec(small) and not history.can_undo and not history.can_redo
    assert out["undo_btn"]["interactive"] is False
    assert 'class="delta' not in out["metrics"]  # no "change" against the default design it replaced
    undone = cb.on_undo(out["spec_yaml"], history, "1:1")
    assert undone.get("spec_yaml", out["spec_yaml"]) == dump_spec(small)  # Undo cannot bring the default back
    edited = cb.on_mutate("wider", out["spec_yaml"], history, "2:1")
    assert edited["history"].can_undo and edited["history"].undo().present.text == dump_spec(small)


def test_a_tampered_link_opens_the_default_and_says_why(start: dict) -> None:
    token = encode_design(load_preset("mobilenetv3_small"))
    out = cb.on_open_link(read_query({"design": token[:-9]}), start["spec_yaml"], start["history"])
    assert "spec_yaml" not in out  # the page keeps the default design
    assert "default design was opened instead" in out["status"] and "default design" in out["edit_error"]
    assert _query(out["link"])["design"] == encode_design(load_preset("attendnext"))  # the address bar is fixed


def test_removing_the_last_block_of_a_stage_selects_one_that_exists(start: dict) -> None:
    y, h = start["spec_yaml"], start["history"]
    spec = load_design(y)
    last = len(spec.stages[0].blocks)
    out = cb.on_remove_block(y, h, f"1:{last}")
    assert out["picker"]["value"] == f"1:{last - 1}"
    assert out["picker"]["value"] in [key for _, key in out["picker"]["choices"]]
    n = len(spec.stages)
    gone = cb.on_remove_stage(y, h, f"{n}:1")
    assert gone["picker"]["value"] in [key for _, key in gone["picker"]["choices"]]


def test_deeper_adds_one_block_in_the_ui(start: dict) -> None:
    y, h = start["spec_yaml"], start["history"]
    before = load_design(y)
    n = len(before.stages)
    out = cb.on_mutate("deeper", y, h, f"{n}:2")  # an inverted residual of the last stage
    after = load_design(out["spec_yaml"])
    units = lambda s: sum(st.repeat * len(st.blocks) for st in s.stages)  # noqa: E731
    assert units(after) == units(before) + 1
    grown = analyze(after).params - analyze(before).params
    assert 0 < grown < 0.5 * analyze(before).params  # one block, not a copy of the stage


def test_a_parallel_groups_form_shows_its_columns_and_merge() -> None:
    from tests.tiny_designs import tiny_design

    data = tiny_design(width=8, stem_stride=2)
    data["stages"][0]["blocks"].append({"type": "parallel", "merge": "add", "branches": [
        [{"type": "dwsep", "out": 8}], [{"type": "conv", "out": 8, "kernel": 1}]]})
    spec = load_design(data)
    text = dump_spec(spec)
    key = f"1:{len(spec.stages[0].blocks)}"
    shown = cb.on_select_block(key, text)
    assert "column 1" in shown["form_title"] and "column 2" in shown["form_title"] and "dwsep" in shown["form_title"]
    assert shown["slot0_choice"]["visible"] and shown["slot0_choice"]["choices"] == ["add", "concat"]
    slots = [None] * 3 * 12
    slots[1] = "concat"
    out = cb.on_apply_form(text, None, key, "", *slots)
    assert load_design(out["spec_yaml"]).stages[0].blocks[-1].merge == "concat"


def test_store_v4_migrates_and_keeps_designs(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    for target in range(1, 4):
        apply_migration(conn, target)
    yaml_text = dump_spec(load_preset("fbnet_c"))
    conn.execute("INSERT INTO designs (name, spec_yaml, spec_hash, created_at) VALUES ('old', ?, ?, 1.0)",
                 (yaml_text, spec_hash(yaml_text)))
    conn.close()
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION == 4
        old = s.get_design(1)
        assert old.name == "old" and old.last_used_at is None and old.origin is None
        assert s.keep_design(yaml_text, "preset") == 1  # deduplicated by hash
        kept = s.get_design(1)
        assert kept.last_used_at is not None and kept.origin == "preset" and kept.name == "old"
        other = s.keep_design(dump_spec(load_preset("mobileone_s1")), "link")
        assert [d.id for d in s.recent_designs()] == [other, 1]
        renamed = s.rename_design(1, "  my   fbnet  ")
        assert renamed.name == "my fbnet" and renamed.spec_yaml == yaml_text  # the spec keeps its own name
        for bad in ("", "x" * 81, "a\x1bb"):
            with pytest.raises(ValueError, match="1 to 80 printable"):
                s.rename_design(1, bad)
        with pytest.raises(ValueError, match="no design 99"):
            s.rename_design(99, "x")


def test_the_keeper_stores_every_shown_design_once(tmp_path: Path, start: dict) -> None:
    store = Store(tmp_path / "kept.sqlite")
    keeper = dc.install_keeper(store)
    try:
        first = cb.on_mutate("wider", start["spec_yaml"], start["history"], "2:1")
        cb.on_undo(first["spec_yaml"], first["history"], "2:1")
        cb.on_redo(first["spec_yaml"], first["history"].undo(), "2:1")
        assert keeper is not None
        keeper.flush()
        listed = dc.on_list_designs(store)
        names = [row[1] for row in listed["my_designs_table"]]
        assert names == ["attendnext-edit-1", "attendnext"]  # three shows, two designs, last opened first
        edited = analyze(load_design(first["spec_yaml"]))
        assert listed["my_designs_table"][0][3] == round(edited.params / 1e6, 3)
        design_id = listed["my_designs_choices"][0][1]
        renamed = dc.on_rename_design(design_id, "wide stage 2", store)
        assert renamed["my_designs_table"][0][1] == "wide stage 2" and "Renamed" in renamed["my_designs_status"]
        assert "Not renamed" in dc.on_rename_design(design_id, "", store)["my_designs_status"]
        opened = dc.on_open_design(design_id, store)
        assert opened["editor"] == first["spec_yaml"]
        assert "Pick a design" in dc.on_open_design(None, store)["my_designs_status"]
        assert "Cannot open" in dc.on_open_design(12345, store)["my_designs_status"]
    finally:
        dc.install_keeper(None)
        store.close()


def test_history_lists_latency_and_labels_what_each_number_is_for(tmp_path: Path) -> None:
    from explorer.latency.measure import measure_local
    from explorer.ui import history_callbacks as hc
    from tests.tiny_designs import tiny_design

    store = Store(tmp_path / "lat.sqlite")
    try:
        spec = load_design({**tiny_design(width=8, stem_stride=2), "name": "tiny-lat"})
        text = dump_spec(spec)
        stats = measure_local(spec, runs=3, warmup=1, threads=1)
        latency_id = dc.record_latency(text, stats, "this machine", store)
        assert latency_id is not None
        out = hc.on_refresh(store)
        assert "1 latency measurement(s)" in out["status"]
        (row,) = out["latency_table"]
        assert len(row) == len(hc.LATENCY_HEADERS) and row[1] == "tiny-lat"
        size = spec.input.size if isinstance(spec.input.size, int) else spec.input.size[-1]
        assert row[2] == f"as designed: {size}², {spec.num_classes} classes, batch 1"
        assert row[4].startswith("this machine") and row[5] == round(stats["median_ms"], 3)
        assert "training copy" in " ".join(hc.RUN_HEADERS) and "as designed" in " ".join(hc.DESIGN_HEADERS)
        assert dc.record_latency(text, {"median_ms": None}, "x", store) is None  # a failed measurement: nothing
    finally:
        store.close()


def test_training_on_a_folder_under_the_data_root_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    import yaml
    from PIL import Image

    from explorer.ui import training_callbacks as tc
    from tests.tiny_designs import tiny_design

    root = tmp_path / "data"
    for k, colour in enumerate(["red", "green", "blue"]):
        (root / "colours" / colour).mkdir(parents=True)
        for i in range(6):
            arr = np.zeros((20, 20, 3), np.uint8)
            arr[..., k] = 220
            Image.fromarray(arr).save(root / "colours" / colour / f"{i}.png")
    outside = tmp_path / "secret"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    text = yaml.safe_dump(tiny_design("tiny-folder", 16), sort_keys=False)
    store = Store(tmp_path / "runs.sqlite")
    try:
        monkeypatch.delenv(tc.DATA_ROOT_ENV, raising=False)
        frames = list(tc.on_start_training(text, "digits", 4, 16, 0, session="f0", store=store, folder="colours"))
        assert len(frames) == 1 and "no data root" in frames[0][0]
        monkeypatch.setenv(tc.DATA_ROOT_ENV, str(root))
        for bad, words in (("../secret", "not inside the data root"), ("escape", "not inside the data root"),
                           (str(outside), "not inside the data root"), ("nope", "no folder 'nope'"),
                           (".", "not inside the data root")):
            frames = list(tc.on_start_training(text, "digits", 4, 16, 0, session="f1", store=store, folder=bad))
            assert len(frames) == 1 and words in frames[0][0], (bad, frames[0][0])
        assert store.list_runs() == []
        frames = list(tc.on_start_training(text, "digits", 4, 16, 0, session="f2", store=store, folder="colours",
                                           poll_s=0.05))
        assert "Run 1 finished" in frames[-1][0], frames[-1][0]
        run = store.list_runs()[0]
        assert run.dataset == str((root / "colours").resolve()) and run.config["num_classes"] == 3
    finally:
        store.close()


def test_a_taken_or_impossible_port_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from explorer.cli import main

    assert main(["ui", "--port", "99999"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--port 99999 is not a port; use 1 to 65535" in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["ui", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"port {port} on 127.0.0.1 is taken" in err
    assert main(["ui", "--data-root", "/no/such/folder"]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_preset_counts_are_cached_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import explorer.analysis_cache as ac

    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    spec = load_preset("mobilenetv3_small")
    first = ac.cached_analysis(spec)
    path = ac.cache_path(spec)
    assert path.is_file() and path.parent == tmp_path / "cache" / "analyses"
    calls: list[object] = []
    monkeypatch.setattr(ac, "analyze", lambda s: calls.append(s) or first)
    assert ac.cached_analysis(spec) == first and calls == []  # read back, not counted
    path.write_text('{"name": "mobilenetv3_small", "params": "damaged')  # a damaged file is ignored, then rewritten
    assert ac.cached_analysis(spec) == first and len(calls) == 1
    assert ac.cached_analysis(spec) == first and len(calls) == 1
    other = ac.cache_path(spec.model_copy(update={"name": "renamed"}))
    assert other != path  # keyed by the design itself


def test_the_page_leaves_range_checks_and_removed_blocks_to_our_callbacks() -> None:
    import gradio as gr

    from explorer.ui.app import build_app

    demo = build_app()
    numbers = [b for b in demo.blocks.values() if isinstance(b, gr.Number)]
    assert numbers and all(b.minimum is None and b.maximum is None for b in numbers), \
        "a Number with minimum/maximum gets Gradio's refusal instead of our one-line message"
    picker = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "block-picker")
    assert picker.allow_custom_value  # a just-removed block in flight is not refused with a toast
    assert {"link", "preset", "form_error"} <= set(demo.output_names)
