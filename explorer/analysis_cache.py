"""Analyses kept on disk between runs, so that ``explorer ui`` starts without counting every preset.

``cached_analysis(spec)`` returns ``analyze(spec)``, read from the user's cache directory when an
earlier process counted the same design with the same code: the file's name is the sha256 of the
design's canonical JSON, the versions of torch, fvcore and pydantic, and the source of every
module the count depends on (``blocks/``, ``explorer/{analysis,build,spec,unit_count,limits}.py``),
so an edit of a block or a library upgrade counts afresh. The file holds the ``Analysis`` as JSON
and is read back through its pydantic model (validated; nothing is unpickled). A damaged,
truncated, oversized or unreadable file is ignored (and rewritten); a cache directory that cannot
be written is not an error, only a slower start.

``preset_analysis(name)`` is the start-up path for the shipped presets: when this code counted a
preset before, its spec is only parsed and validated (no size probe on the meta device: the
probe passed when it was first counted, and a changed preset file is another design, so a cache
miss) and its count read back; otherwise the full ``load_preset`` and ``analyze`` run once.

Directory: ``$EXPLORER_CACHE_DIR``, else ``$XDG_CACHE_HOME/attendnext-explorer``, else
``~/.cache/attendnext-explorer``; files go under ``analyses/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from blocks import get_block

from .analysis import Analysis, analyze
from .design import load_preset
from .presets import preset_path
from .spec import MAX_SPEC_BYTES, ArchitectureSpec, SpecError, validate_spec
from .spec_yaml import parse_spec_text

__all__ = ["MAX_CACHE_FILE_BYTES", "cache_dir", "cache_path", "cached_analysis", "code_fingerprint",
           "preset_analysis"]

#: a cached analysis larger than this is not read (AttendNeXt's is about 30 KB)
MAX_CACHE_FILE_BYTES = 4 << 20
#: the modules whose source decides what ``analyze`` returns
_SOURCES = ("analysis.py", "build.py", "spec.py", "unit_count.py", "limits.py")


def cache_dir() -> Path:
    """Where cached analyses live (see the module docstring)."""
    env = os.environ.get("EXPLORER_CACHE_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "attendnext-explorer"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 of the library versions and the source the count depends on (once per process)."""
    h = hashlib.sha256()
    for package in ("torch", "fvcore", "pydantic"):
        try:
            h.update(f"{package}={importlib.metadata.version(package)};".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{package}=?;".encode())
    here = Path(__file__).resolve().parent
    blocks = here.parent / "blocks"
    files = sorted(blocks.glob("*.py")) + [here / name for name in _SOURCES]
    for path in files:
        with contextlib.suppress(OSError):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def cache_path(spec: ArchitectureSpec) -> Path:
    """The file that holds (or will hold) ``spec``'s analysis."""
    key = hashlib.sha256((code_fingerprint() + "\0" + spec.model_dump_json()).encode()).hexdigest()
    return cache_dir() / "analyses" / f"{key}.json"


def _read(path: Path) -> Analysis | None:
    try:
        if path.stat().st_size > MAX_CACHE_FILE_BYTES:
            return None
        return Analysis.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError):
        return None


def _write(path: Path, analysis: Analysis) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(analysis.model_dump_json())
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def cached_analysis(spec: ArchitectureSpec) -> Analysis:
    """``analyze(spec)``, from the disk cache when this code counted this design before."""
    path = cache_path(spec)
    found = _read(path)
    if found is not None and found.name == spec.name:
        return found
    analysis = analyze(spec)
    _write(path, analysis)
    return analysis


def preset_analysis(name: str) -> tuple[ArchitectureSpec, Analysis]:
    """A shipped preset's spec and count: from the cache without the size probe when counted before."""
    path = preset_path(name)
    try:
        if path.stat().st_size <= MAX_SPEC_BYTES:
            spec = validate_spec(parse_spec_text(path.read_text(encoding="utf-8")), get_block)
            found = _read(cache_path(spec))
            if found is not None and found.name == spec.name:
                return spec, found
    except (OSError, SpecError):
        pass  # the full load below reports what is wrong, in its words
    spec = load_preset(name)  # validated and size-checked on the meta device before its first count
    return spec, cached_analysis(spec)
