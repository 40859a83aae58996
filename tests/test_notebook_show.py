"""``explorer.ui.show``: the explorer served from Python (as in a notebook cell), its handle, and close().

Driven without a browser: the server answers on its port, the handle follows the app's design state
through the callback the app fires (``on_design_change``), and ``close()`` frees the port.
"""

from __future__ import annotations

import socket
import urllib.request

import pytest

from explorer.design import load_design, load_preset
from explorer.mutate import apply_mutation
from explorer.spec import SpecError
from tests.tiny_designs import tiny_design

pytestmark = pytest.mark.slow  # builds the whole app and starts a server


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_show_serves_follows_edits_and_closes() -> None:
    import explorer.ui

    start = load_design(tiny_design("tiny-shown"))
    handle = explorer.ui.show(start, display=False)
    try:
        assert not _port_is_free(handle.port)
        assert handle.url.startswith(f"http://127.0.0.1:{handle.port}/?design=")
        with urllib.request.urlopen(f"http://127.0.0.1:{handle.port}/", timeout=30) as response:
            assert response.status == 200
        assert handle.design == start  # before any edit: the design it was opened on

        edited = apply_mutation(load_preset("mobilenetv3_large"), "swap_condenser", 1, 1)
        handle.on_design_change(edited.to_yaml())  # what the app's spec_yaml change event calls
        assert handle.design == edited and handle.design.name == "mobilenetv3_large"
        handle.on_design_change("")  # an empty state is not a design: the last one stays
        assert handle.design == edited
        handle.on_design_change("name: [broken")
        with pytest.raises(SpecError):
            _ = handle.design
    finally:
        handle.close()
    assert handle.closed and _port_is_free(handle.port)
    handle.close()  # twice is harmless


def test_the_change_listener_is_wired_to_the_design_state() -> None:
    """The handle's callback is registered on the app's ``spec_yaml`` state (what a browser edit fires)."""
    import explorer.ui

    with explorer.ui.show("mobilenetv3_small", display=False) as handle:
        state = handle.demo.spec_yaml_state
        listeners = [d for d in handle.demo.fns.values()
                     if any(t[0] is state._id or getattr(t[0], "_id", t[0]) == state._id for t in d.targets)
                     and d.fn == handle.on_design_change]
        assert len(listeners) == 1 and [b._id for b in listeners[0].inputs] == [state._id]
        port = handle.port
    assert _port_is_free(port)
