"""The explorer inside a notebook cell: ``handle = show(design)``, edit it there, ``handle.design`` gives it back.

``show`` builds the same app as ``explorer ui`` (``build_app``), serves it on 127.0.0.1 at a free
port in a background thread (Gradio's non-blocking launch) and shows it inline in the cell as an
iframe opened on the design's link (``explorer.link.design_url``), so the page starts from
``design``. Every time the page's current design changes (an edit, undo, a loaded preset), the
app's ``spec_yaml`` state fires ``change`` and the handle keeps the new YAML; ``handle.design`` is
it as an ``ArchitectureSpec`` (the design given to ``show`` until the first edit), ``handle.yaml``
its text. ``handle.close()`` stops the server (the port is free again); a handle is also a
context manager. Counting runs in the notebook's own process (no worker pool, no time bound), and
nothing is kept in the store ("My designs" keeps only what ``explorer ui`` shows).

In a plain Python session (no notebook front end) nothing is displayed; ``handle.url`` can be
opened in a browser.
"""

from __future__ import annotations

import inspect
import os
import threading
import time
import urllib.request
from typing import Any

import gradio as gr

from ..design import DesignRef, load_design
from ..link import design_url
from ..spec import MAX_SPEC_BYTES, ArchitectureSpec, dump_spec
from .app import CSS, build_app
from .browser_tools import free_port
from .state import load_state

__all__ = ["ExplorerHandle", "show"]


class ExplorerHandle:
    """A running inline explorer: ``.design`` (the edited design), ``.yaml``, ``.url``, ``.port``, ``.close()``."""

    def __init__(self, demo: gr.Blocks, start: ArchitectureSpec, host: str, port: int) -> None:
        self.demo = demo
        self.host = host
        self.port = port
        self.url = design_url(start, base=f"http://{host}:{port}/")
        self._yaml = dump_spec(start)
        self._lock = threading.Lock()
        self._closed = False

    def on_design_change(self, spec_yaml: str | None) -> None:
        """The page's design changed (the app's ``spec_yaml`` state): keep its text (the callback the app fires)."""
        if isinstance(spec_yaml, str) and spec_yaml.strip():
            with self._lock:
                self._yaml = spec_yaml

    @property
    def yaml(self) -> str:
        """The YAML of the design the page shows now."""
        with self._lock:
            return self._yaml

    @property
    def design(self) -> ArchitectureSpec:
        """The design the page shows now, validated (the design given to ``show`` before any edit)."""
        return load_state(self.yaml)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the server; the port is free again. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self.demo.close()

    def __enter__(self) -> ExplorerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"serving {self.host}:{self.port}"
        return f"<ExplorerHandle {self.design.name!r}, {state}>"

    def _repr_html_(self) -> str:  # shown when a cell ends with the handle
        return f'<iframe src="{self.url}" width="100%" height="900" style="border: 0"></iframe>' if not self._closed \
            else "<p>explorer closed</p>"


def _wait_until_up(url: str, timeout_s: float) -> None:
    """Return once ``url`` answers 200; ``RuntimeError`` (one line) if it has not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own http://127.0.0.1 URL
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the explorer did not answer on {url} within {timeout_s:.0f} s; is the machine "
                               "overloaded, or does a proxy setting catch 127.0.0.1? (NO_PROXY=127.0.0.1)")
        time.sleep(0.25)


def show(design: DesignRef | ArchitectureSpec = "attendnext", *, port: int | None = None, height: int = 900,
         display: bool = True, timeout_s: float = 120.0) -> ExplorerHandle:
    """Serve the explorer on 127.0.0.1 (``port``, or a free one), opened on ``design``, inline in the cell.

    ``design``: a preset name, a spec path, YAML text, a mapping or an ``ArchitectureSpec``.
    ``display=False`` only serves (tests, scripts): open ``handle.url`` yourself. Waits at most
    ``timeout_s`` for the server to answer (``RuntimeError`` after stopping it, if it does not).
    Returns the handle; ``handle.design`` is the edited design, ``handle.close()`` stops the server.
    """
    spec = design if isinstance(design, ArchitectureSpec) else load_design(design)
    host = "127.0.0.1"
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("GRADIO_RUN_HISTORY", "False")
    demo = build_app()
    handle = ExplorerHandle(demo, spec, host, port if port is not None else free_port(host))
    state = demo.spec_yaml_state  # type: ignore[attr-defined]  # set by build_app
    with demo:
        state.change(handle.on_design_change, [state], None, queue=False, api_visibility="private")
    demo.queue(default_concurrency_limit=2)
    accepted = inspect.signature(demo.launch).parameters
    extra: dict[str, Any] = {"run_history": False} if "run_history" in accepted else {}
    if "_frontend" in accepted:  # Gradio's own check gives up after one 3-s HEAD; ``_wait_until_up`` is patient
        extra["_frontend"] = False
    demo.launch(**extra, server_name=host, server_port=handle.port, share=False, inbrowser=False, inline=False,
                prevent_thread_lock=True, show_error=True, max_file_size=MAX_SPEC_BYTES, ssr_mode=False, css=CSS,
                footer_links=[], quiet=True)
    try:
        _wait_until_up(f"http://{host}:{handle.port}/", timeout_s)
    except BaseException:
        handle.close()
        raise
    if display:
        try:
            from IPython.display import IFrame
            from IPython.display import display as ipy_display
        except ImportError:  # not in IPython: nothing to draw into
            pass
        else:
            ipy_display(IFrame(handle.url, width="100%", height=height))
    return handle
