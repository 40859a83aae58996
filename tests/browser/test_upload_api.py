"""The upload endpoint through the real server's Gradio API (no browser): a client-named path is never read.

A hostile client calls ``/on_upload`` directly with a path of its choosing, in every shape the
API accepts (a FileData with and without its ``meta``, a bare string): none is read, nothing of
the file comes back, and an existing file is answered exactly like a missing one. A file the
client really uploads (``gradio_client.handle_file``) is loaded. ``explorer.ui.callbacks.on_upload``
checks the same again (tests/test_ui_callbacks.py calls it without a server).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from explorer.analysis import analyze
from explorer.design import load_preset
from explorer.spec import dump_spec

pytestmark = pytest.mark.browser

SECRET = "s3cr3t-value-4711"


def _call(server: str, endpoint: str, data: list) -> str:
    """POST ``data`` to ``/gradio_api/call/<endpoint>`` as any HTTP client can; the event stream's text."""
    # server is this test's own http://127.0.0.1 URL
    request = urllib.request.Request(f"{server}gradio_api/call/{endpoint}",  # noqa: S310
                                     data=json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{server}gradio_api/call/{endpoint}/{event_id}", timeout=60) as response:  # noqa: S310
        return response.read().decode("utf-8", errors="replace")


def _shapes(path: str) -> list:
    return [{"path": path, "meta": {"_type": "gradio.FileData"}}, {"path": path}, path]


def test_a_path_named_by_the_client_is_never_read(server: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"name": SECRET, "api_key": SECRET}))
    absent = tmp_path / "absent.json"  # as long a name as the secret's: replies truncate alike
    for path in (str(secret), "/etc/passwd", str(absent)):
        for payload in _shapes(path):
            reply = _call(server, "on_upload", [payload])
            assert SECRET not in reply and "root:" not in reply, (payload, reply)
            assert "metric-params" not in reply, (payload, reply)  # nothing was loaded
    # an existing file and a missing one get the same answer (the file's name aside)
    for there, not_there in zip(_shapes(str(secret)), _shapes(str(absent)), strict=True):
        assert (_call(server, "on_upload", [there]).replace("secret", "absent")
                == _call(server, "on_upload", [not_there]))


def test_a_file_the_client_uploads_is_loaded(server: str, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    design = tmp_path / "small.yaml"
    design.write_text(dump_spec(load_preset("mobilenetv3_small")))
    result = Client(server, verbose=False).predict(handle_file(str(design)), api_name="/on_upload")
    params = analyze(load_preset("mobilenetv3_small")).params
    assert any(f'data-value="{params}"' in str(value) for value in result)
    assert any("Loaded small.yaml" in str(value) for value in result)
