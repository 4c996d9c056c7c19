"""`manage.py runlocal` (what `make run` ends with): the site and a worker start, a worker that dies is started
again, one Ctrl-C stops everything."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.supervisor import Supervisor

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. A killed process stays a zombie until its parent reaps it; an
    orphan's parent is PID 1, which may reap late (CI's init did), and ``killpg(pgid, 0)`` still finds a zombie."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp...
        except (OSError, IndexError):  # it ended while we looked
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def groups_end(groups, timeout: float) -> bool:
    """SIGKILL is delivered at once but a process leaves only once its kernel work is done: wait for that."""
    deadline = time.monotonic() + timeout
    while any(map(group_alive, groups)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
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


def wait_for_text(log: Path, predicate, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if predicate(text):
            return text
        time.sleep(0.3)
    pytest.fail(f"timed out; runlocal's output:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_runlocal_serves_restarts_a_dead_worker_and_one_signal_stops_everything(tmp_path, stop_signal):
    port = free_port()
    # make run's embedded defaults: SQLite and files under DATA_DIR. Never CI's DATABASE_URL: that database
    # is shared, and two of these tests migrating it at once (pytest-xdist) would race.
    env = {
        **{key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CELERY_BROKER_URL")},
        "DATA_DIR": str(tmp_path),
        "DEBUG": "true",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)

    def interactive_signals() -> None:  # a terminal's foreground job receives Ctrl-C; a test's child ignores it
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    log = tmp_path / "runlocal.log"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runlocal", f"127.0.0.1:{port}", "--concurrency", "1"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=interactive_signals,
    )
    pgid = process.pid
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz", timeout=120)
        text = wait_for_text(log, lambda text: text.count(" ready.") == 2, 120)  # both workers
        assert (tmp_path / "broker.sqlite3").is_file()  # the embedded broker
        if stop_signal == signal.SIGINT:  # once is enough: the supervisor is the same whichever signal stops it
            pid = int(re.search(r"Celery worker started \(pid (\d+)", text)[1])
            os.kill(pid, signal.SIGKILL)
            text = wait_for_text(log, lambda text: text.count(" ready.") == 3, 120)
            assert f"Celery worker (pid {pid}) exited with code -9" in text and "Celery worker restarted (pid" in text
            assert groups_end([pid], timeout=10)  # its orphaned pool child went with it
            os.killpg(pgid, signal.SIGINT)  # what the terminal does on Ctrl-C
        else:
            os.kill(process.pid, signal.SIGTERM)  # a process manager signals the parent only
        process.wait(timeout=60)
        # Each worker leads a process group of its own (core.supervisor); runlocal's group holds the web server.
        groups = [pgid, *(int(pid) for pid in re.findall(r"pid (\d+)", log.read_text(errors="replace")))]
        assert groups_end(groups, timeout=30), "a child process outlived runlocal"
    finally:
        for group in (pgid, *re.findall(r"pid (\d+)", log.read_text(errors="replace"))):
            if group_alive(int(group)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(group), signal.SIGKILL)
    output = log.read_text(errors="replace")
    assert "Celery worker started" in output
    assert "Stopped the web server and the worker." in output
    assert output.count("restarted (pid") == (stop_signal == signal.SIGINT)  # the stop itself restarts nothing


def test_the_supervisor_backs_off_between_restarts_and_stops_for_good():
    lines: list[str] = []
    crashing = Supervisor("crasher", ["/bin/sh", "-c", "exit 3"], log=lines.append, first_delay=0.05, max_delay=0.2)
    crashing.start()
    deadline = time.monotonic() + 20
    while crashing.restarts < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    crashing.stop()
    crashing.wait(timeout=5)
    exits = [line for line in lines if "exited" in line]
    assert all("exited with code 3" in line for line in exits)
    assert [line.rsplit("restarting in ", 1)[1] for line in exits[:4]] == ["0.05 s", "0.1 s", "0.2 s", "0.2 s"]
    restarts = crashing.restarts
    time.sleep(0.5)
    assert crashing.restarts == restarts  # stopped for good

    steady = Supervisor("sleeper", ["/bin/sh", "-c", "sleep 30"], log=lines.append)
    sleeper = steady.start()
    started = time.monotonic()
    steady.stop()
    steady.wait(timeout=5)
    assert sleeper.returncode == -signal.SIGTERM and time.monotonic() - started < 5
    assert steady.restarts == 0

    # One that ignores SIGTERM (its warm shutdown hangs): kill() ends it at once. That the process group goes with
    # it is the runlocal test's: a SIGKILLed worker's orphaned pool child.
    stubborn = Supervisor("stubborn", ["/bin/sh", "-c", "trap '' TERM; exec sleep 30"], log=lines.append)
    process = stubborn.start()
    time.sleep(0.3)
    stubborn.stop()
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.5)
    stubborn.kill()
    assert process.returncode == -signal.SIGKILL
