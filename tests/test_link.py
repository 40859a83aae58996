"""Design links: encode, decode, bounds, damage, and ``explorer link``."""

from __future__ import annotations

import base64
import json
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest

from explorer.cli import main
from explorer.design import load_preset
from explorer.link import (
    MAX_LINK_CHARS,
    LinkError,
    decode_design,
    design_query,
    design_url,
    encode_design,
    read_query,
)
from explorer.presets import list_presets
from explorer.spec import MAX_SPEC_BYTES


def _token(payload: bytes) -> str:
    return "1." + base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_round_trips(name: str) -> None:
    spec = load_preset(name)
    token = encode_design(spec)
    assert len(token) < 2048 and decode_design(token) == spec


def test_url_carries_design_and_block() -> None:
    spec = load_preset("mobilenetv3_small")
    url = design_url(spec, "http://example.org:8000/explorer", "2:1")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "example.org:8000", "/explorer")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    opened = read_query(query)
    assert opened.spec == spec and opened.selected == "2:1" and opened.error is None
    assert read_query({}) .spec is None and read_query({}).error is None
    assert "block" not in design_query(spec, "not-a-block")
    with pytest.raises(LinkError, match="not an http"):
        design_url(spec, "javascript:alert(1)")


@pytest.mark.parametrize("token, words", [
    ("", "carries no design"),
    ("2.abc", "not in a format"),
    ("1.ab$c", "characters a link never has"),
    ("1.abcde", "not base64"),
    (_token(b"not zlib at all"), "does not decompress"),
    (_token(zlib.compress(b"name: x\n" * 50)[:-6]), "cut short"),
    (_token(zlib.compress("\udcff".encode("utf-8", "surrogatepass"))), "not text"),
    (_token(zlib.compress(b"[1, 2]")), "not valid"),
    (_token(zlib.compress(json.dumps({"name": "x", "stages": "nope"}).encode())), "not valid"),
])
def test_damaged_links_say_so_in_one_line(token: str, words: str) -> None:
    with pytest.raises(LinkError) as info:
        decode_design(token)
    message = str(info.value)
    assert words in message and "default design was opened instead" in message and "\n" not in message
    assert read_query({"design": token}).error == info.value.errors[0]


def test_a_tampered_token_is_refused_not_misread() -> None:
    token = encode_design(load_preset("attendnext"))
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    with pytest.raises(LinkError, match="default design"):
        decode_design(flipped)


def test_bounds_before_allocation() -> None:
    with pytest.raises(LinkError, match="at most 16 KB"):
        decode_design("1." + "A" * (MAX_LINK_CHARS + 1))
    bomb = zlib.compress(b" " * (64 * MAX_SPEC_BYTES), 9)  # 64 MiB of spaces in ~65 KB ... too long a link
    assert len(bomb) > MAX_LINK_CHARS
    small_bomb = zlib.compress(b" " * (8 * MAX_SPEC_BYTES), 9)  # 8 MiB in about 8 KB: fits a link
    token = _token(small_bomb)
    assert len(token) <= MAX_LINK_CHARS
    with pytest.raises(LinkError, match="more than 1024 KiB"):
        decode_design(token)


def test_too_large_a_design_is_refused_when_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    import explorer.link as link

    monkeypatch.setattr(link, "MAX_LINK_CHARS", 100)
    with pytest.raises(LinkError, match="save it as YAML"):
        link.encode_design(load_preset("attendnext"))


def test_cli_link(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["link", "mobilenetv3_small", "--base", "http://10.0.0.2:7860/", "--block", "1:1"]) == 0
    url = capsys.readouterr().out.strip()
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith("http://10.0.0.2:7860/?design=1.")
    assert read_query(query).spec == load_preset("mobilenetv3_small")
    assert main(["link", "attendnext", "--block", "9:1"]) == 2
    assert "no stage 9" in capsys.readouterr().err
    assert main(["link", "no_such_thing"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
