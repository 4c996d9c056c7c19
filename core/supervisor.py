"""Keeps a child process running: started again with a back-off whenever it exits, until asked to stop.

``manage.py runlocal`` supervises its Celery workers with it, so that a worker that dies (killed, out of memory,
an unrecoverable broker error) is back within seconds instead of leaving the site without one. The back-off
doubles after each exit that follows a short run, so a worker that cannot start does not spin the CPU, and
starts over once a worker has run steadily.

Each process leads a process group of its own, so that what it leaves behind goes with it: a Celery worker
killed with SIGKILL orphans its prefork pool children, and one of them may still be running the task that the
broker now hands to the new worker. Signals reach the group only through the supervisor (a terminal's Ctrl-C
reaches ``runlocal``, which stops its workers).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence


class Supervisor:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log: Callable[[str], None],
        first_delay: float = 1.0,
        max_delay: float = 60.0,
        steady_after: float = 60.0,
    ) -> None:
        self.name, self.argv, self.log = name, list(argv), log
        self.first_delay, self.max_delay, self.steady_after = first_delay, max_delay, steady_after
        self.restarts = 0
        self.process: subprocess.Popen | None = None
        self._started_at = 0.0
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # a restart and a stop never interleave
        self._thread = threading.Thread(target=self._watch, name=f"supervise {name}", daemon=True)

    def start(self) -> subprocess.Popen:
        self.process = self._spawn()
        self._thread.start()
        return self.process

    def _spawn(self) -> subprocess.Popen:
        self._started_at = time.monotonic()
        return subprocess.Popen(self.argv, process_group=0)

    def _watch(self) -> None:
        delay = self.first_delay
        while True:
            process = self.process
            code = process.wait()
            _kill_group(process.pid)
            if self._stopping.is_set():
                return
            ran = time.monotonic() - self._started_at
            if ran >= self.steady_after:
                delay = self.first_delay
            self.log(
                f"{self.name} (pid {process.pid}) exited with code {code} after {ran:.0f} s; restarting in {delay:g} s"
            )
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self.process = self._spawn()
                self.restarts += 1
            self.log(f"{self.name} restarted (pid {self.process.pid})")
            delay = min(delay * 2, self.max_delay)

    def stop(self) -> None:
        """Ask the process to finish (SIGTERM: Celery's warm shutdown) and restart it no more."""
        with self._lock:
            self._stopping.set()
            process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Stop at once: SIGKILL to the process and whatever it started."""
        self.stop()
        if self.process is not None:
            _kill_group(self.process.pid)
            self.process.wait()

    def wait(self, timeout: float) -> None:
        """Wait for a stopped process to exit; kill it past ``timeout``."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(self.process.pid)
            self.process.wait()
        self._thread.join(timeout=5)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group went with its leader
        os.killpg(pgid, signal.SIGKILL)
