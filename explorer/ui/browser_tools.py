"""Serving the explorer in a child process and finding the system Chromium, for code that drives a page.

Used by the browser tests (``tests/browser``), the agent tests (``free_port``), the UI latency
benchmark (``benchmarks/ui_latency.py``), the README screenshot (``explorer.ui.screenshot``) and
``explorer.ui.show`` (``free_port``);
the app itself never imports this module.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["find_chromium", "free_port", "serve_subprocess", "stop_process"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (for a test or benchmark server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def find_chromium() -> str | None:
    """The system Chromium (never a downloaded one), for the browser tests, benchmark and screenshot."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def serve_subprocess(port: int, host: str = "127.0.0.1", timeout_s: float = 180.0,
                     log: Path | None = None, db: Path | None = None) -> subprocess.Popen:
    """Start ``explorer ui`` in a child process and wait (at most ``timeout_s``) until it answers.

    Raises ``RuntimeError`` with the server's output if it exits or does not answer in time; the
    caller terminates the process. ``db``, when given, is the SQLite store the server's Training
    and History tabs use (``EXPLORER_DB``).
    """
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    if db is not None:
        env["EXPLORER_DB"] = str(db)
    with open(log, "wb") if log else contextlib.nullcontext(subprocess.DEVNULL) as out:  # the child keeps a copy
        proc = subprocess.Popen([sys.executable, "-m", "explorer", "ui", "--host", host, "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://{host}:{port}/"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = Path(log).read_text(errors="replace")[-2000:] if log else ""
            raise RuntimeError(f"explorer ui exited with code {proc.returncode} before serving\n{text}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"explorer ui did not answer on {url} within {timeout_s:.0f} s")


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Ask a child process to stop (SIGTERM); kill it if it has not ended within ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)
