"""`manage.py runlocal` (what `make run` ends with): the site and a worker start, one Ctrl-C stops both."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a loopback URL we built)
                return response.status == 200
        except OSError:
            time.sleep(0.3)
    return False


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_runlocal_serves_and_one_signal_stops_web_and_worker(tmp_path, stop_signal):
    port = free_port()
    # make run's embedded defaults: SQLite and files under DATA_DIR. Never CI's DATABASE_URL: that database
    # is shared, and two of these tests migrating it at once (pytest-xdist) would race.
    env = {
        **{key: value for key, value in os.environ.items() if key != "DATABASE_URL"},
        "DATA_DIR": str(tmp_path),
        "DEBUG": "true",
        "CELERY_BROKER_URL": f"sqlite:///{tmp_path / 'broker.sqlite3'}",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)

    def interactive_signals() -> None:  # a terminal's foreground job receives Ctrl-C; a test's child ignores it
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    process = subprocess.Popen(
        [sys.executable, "manage.py", "runlocal", f"127.0.0.1:{port}", "--concurrency", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=interactive_signals,
    )
    pgid = process.pid
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz", timeout=60)
        time.sleep(3)  # let the worker finish starting
        if stop_signal == signal.SIGINT:
            os.killpg(pgid, signal.SIGINT)  # what the terminal does on Ctrl-C
        else:
            os.kill(process.pid, signal.SIGTERM)  # a process manager signals the parent only
        output, _ = process.communicate(timeout=60)
        deadline = time.monotonic() + 30
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not group_alive(pgid), "a child process outlived runlocal"
    finally:
        if group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
    assert "Celery worker started" in output
    assert "celery@" in output and "ready" in output
    assert "Stopped the web server and the worker." in output
