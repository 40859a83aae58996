"""A design in a link: encode a spec into a URL-safe token, and read one back, bounded and validated.

Token (format 1): ``"1." + base64url(zlib(canonical JSON))`` without padding, where the canonical
JSON is the design's full mapping (``ArchitectureSpec.to_dict()``, defaults filled, compact
separators). AttendNeXt's token is about 1.4 KB; a link is refused past ``MAX_LINK_CHARS``
(16 KB) with a one-line message.

Reading a token never trusts it. Its text is checked (length, alphabet, version) before it is
decoded; the zlib stream is inflated with ``decompressobj().decompress(data, max_length)``, so at
most ``MAX_SPEC_BYTES + 1`` bytes are ever produced, whatever the stream claims (a "zip bomb" is
stopped after 1 MiB, not after it has filled memory); the text then goes through the one
validated parser every design goes through (``parse_spec_text`` with its bounds, then
``load_design``: registry, sizes on the meta device). Every failure is a ``LinkError`` (a
``SpecError``) whose one line says what is wrong and that the default design was opened instead.

A page URL carries the token as ``?design=TOKEN`` and the selected block as ``&block=S:B``
(``BlockRef.key``); :func:`design_url` writes one and :func:`read_query` reads a page's query.
Pure: no UI, no network.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from .design import load_design
from .spec import MAX_SPEC_BYTES, ArchitectureSpec, SpecError, clip
from .spec_yaml import parse_spec_text

__all__ = [
    "DESIGN_PARAM",
    "BLOCK_PARAM",
    "MAX_LINK_CHARS",
    "LinkError",
    "OpenedLink",
    "decode_design",
    "design_query",
    "design_url",
    "encode_design",
    "read_query",
]

#: the query parameters of a page URL: the design's token and the selected block (``stage:block``)
DESIGN_PARAM = "design"
BLOCK_PARAM = "block"
#: the longest token (and query) accepted or written: 16 KB
MAX_LINK_CHARS = 16 * 1024
#: the token format written by this version
VERSION = "1"
_TOKEN = re.compile(r"[A-Za-z0-9_-]*")
_BLOCK = re.compile(r"head|\d{1,3}:\d{1,4}")
#: what every refusal of a link ends with (the page then shows the default design)
OPENED_DEFAULT = "the default design was opened instead"


class LinkError(SpecError):
    """A link that cannot be read: one line naming what is wrong."""


def _spec_json(spec: ArchitectureSpec) -> bytes:
    return json.dumps(spec.to_dict(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_design(spec: ArchitectureSpec | str | Mapping[str, object]) -> str:
    """A valid design -> its link token (``LinkError`` if the token would be longer than ``MAX_LINK_CHARS``).

    ``spec`` is validated first when it is text or a mapping (``load_design``).
    """
    spec = spec if isinstance(spec, ArchitectureSpec) else load_design(spec if isinstance(spec, str)
                                                                         else dict(spec))
    packed = base64.urlsafe_b64encode(zlib.compress(_spec_json(spec), 9)).rstrip(b"=").decode("ascii")
    token = f"{VERSION}.{packed}"
    if len(token) > MAX_LINK_CHARS:
        raise LinkError(f"this design needs a {len(token) // 1024} KB link; links hold at most "
                        f"{MAX_LINK_CHARS // 1024} KB: save it as YAML (⬇ Save YAML) and share the file")
    return token


def decode_design(token: str) -> ArchitectureSpec:
    """A link token -> the validated design; ``LinkError`` (one line) for anything that is not a valid one."""
    if not isinstance(token, str) or not token:
        raise LinkError(f"the link carries no design; {OPENED_DEFAULT}")
    if len(token) > MAX_LINK_CHARS:
        raise LinkError(f"the link's design is {len(token) // 1024} KB; links hold at most "
                        f"{MAX_LINK_CHARS // 1024} KB, so it was not read; {OPENED_DEFAULT}")
    version, dot, packed = token.partition(".")
    if not dot or version != VERSION:
        raise LinkError(f"the link's design is not in a format this explorer writes (it starts "
                        f"{clip(version, 12)!r}, not '{VERSION}.'); it may have been cut or edited; {OPENED_DEFAULT}")
    if not _TOKEN.fullmatch(packed):
        raise LinkError(f"the link's design holds characters a link never has; it was damaged or edited; "
                        f"{OPENED_DEFAULT}")
    try:
        raw = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4))
    except (binascii.Error, ValueError):
        raise LinkError(f"the link's design is cut short or damaged (not base64); {OPENED_DEFAULT}") from None
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(raw, MAX_SPEC_BYTES + 1)  # never more than this is produced
    except zlib.error:
        raise LinkError(f"the link's design is damaged (it does not decompress); {OPENED_DEFAULT}") from None
    if len(data) > MAX_SPEC_BYTES or inflater.unconsumed_tail:
        raise LinkError(f"the link's design unpacks to more than {MAX_SPEC_BYTES // 1024} KiB, far beyond any "
                        f"design; it was not read; {OPENED_DEFAULT}")
    if not inflater.eof:
        raise LinkError(f"the link's design is cut short (the link was truncated); {OPENED_DEFAULT}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise LinkError(f"the link's design is not text; it was damaged or edited; {OPENED_DEFAULT}") from None
    try:
        return load_design(parse_spec_text(text))
    except SpecError as exc:
        raise LinkError(f"the link's design is not valid ({exc.errors[0]}); {OPENED_DEFAULT}") from None


def design_query(spec: ArchitectureSpec | str, selected: str | None = None) -> str:
    """``?design=TOKEN[&block=S:B]`` for a page URL (``selected`` is a ``BlockRef.key``)."""
    params = {DESIGN_PARAM: encode_design(spec)}
    if selected and _BLOCK.fullmatch(selected):
        params[BLOCK_PARAM] = selected
    return "?" + urlencode(params)


def design_url(spec: ArchitectureSpec | str, base: str = "http://127.0.0.1:7860/", selected: str | None = None) -> str:
    """The page URL that opens ``spec`` (and selects ``selected``) on the explorer served at ``base``."""
    if "://" not in base and re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?(/\S*)?", base):
        base = f"http://{base}"  # host[:port][/path]
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LinkError(f"--base {clip(base)!r} is not an http(s) address; give one such as http://127.0.0.1:7860/")
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", design_query(spec, selected)[1:], ""))


@dataclass(frozen=True)
class OpenedLink:
    """What a page's query asked for: a design (``None``: none asked, or refused), a block, and why not."""

    spec: ArchitectureSpec | None
    selected: str | None
    error: str | None


def read_query(params: Mapping[str, str]) -> OpenedLink:
    """A page's query parameters -> the design and block they ask for, or the reason they were refused."""
    token = params.get(DESIGN_PARAM)
    block = params.get(BLOCK_PARAM)
    selected = block if isinstance(block, str) and _BLOCK.fullmatch(block) else None
    if token is None:
        return OpenedLink(None, None, None)
    try:
        return OpenedLink(decode_design(token), selected, None)
    except SpecError as exc:
        return OpenedLink(None, None, exc.errors[0])
