"""CPU time that a benchmark level consumed, read from /proc: what a request costs the machine, which wall-clock
rates on a shared machine do not tell (other jobs take cores, not this run's CPU seconds).

The processes counted, by group:

- **gunicorn**: the master and its workers, found by the ``--bind`` address in their command line;
- **postgres**: the backends connected to the benchmark's database (PostgreSQL titles each backend
  ``postgres: ... <user> <database> <client> <state>``); the server's shared processes (WAL writer, checkpointer)
  also work for other databases on the same server and are left out;
- **redis**: ``redis-server`` (the throttles' counters; shared with other users of the server, a small share);
- **client**: this process, whose threads are the load generator.

A process that starts during the level counts with all its CPU time. Between the first and the last sample a
thread samples every ``interval_s`` and keeps each process's latest reading, so that one that exits meanwhile (a
PostgreSQL backend whose connection passed ``CONN_MAX_AGE``) loses at most the CPU of its last interval; the
sampler's own CPU time is taken off the client's.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
GROUPS = ("gunicorn", "postgres", "redis", "client")
T = TypeVar("T")


def _cpu_ticks(pid: int | str) -> int | None:
    """utime + stime of a process (all its threads), in clock ticks; None once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its closing one.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def _command_line(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass(frozen=True)
class CpuSample:
    ticks: dict[tuple[str, int], int]  # (group, pid) -> ticks


class CpuMeter:
    """Samples the CPU time of the processes that serve one benchmark: ``gunicorn_bind`` is gunicorn's
    ``host:port``, ``database`` the name of the benchmark's PostgreSQL database."""

    def __init__(self, *, gunicorn_bind: str, database: str) -> None:
        self.gunicorn_bind = gunicorn_bind
        self.database = database

    def _group(self, pid: str) -> str | None:
        command = _command_line(pid)
        if not command:
            return None
        if "gunicorn" in command and self.gunicorn_bind in command:
            return "gunicorn"
        if command.startswith("postgres:") and f" {self.database} " in command:
            return "postgres"
        if command.startswith("redis-server"):
            return "redis"
        return None

    def sample(self) -> CpuSample:
        ticks: dict[tuple[str, int], int] = {}
        me = os.getpid()
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            group = "client" if int(entry.name) == me else self._group(entry.name)
            if group is None:
                continue
            used = _cpu_ticks(entry.name)
            if used is not None:
                ticks[(group, int(entry.name))] = used
        return CpuSample(ticks)

    def measure(self, work: Callable[[], T], *, interval_s: float = 0.25) -> tuple[T, dict[str, float]]:
        """``work()``, and the CPU seconds per group that the processes used while it ran."""
        first = self.sample()
        latest = dict(first.ticks)
        done = threading.Event()
        sampler_s = 0.0

        def sampler() -> None:
            nonlocal sampler_s
            while not done.wait(interval_s):
                latest.update(self.sample().ticks)
            sampler_s = time.thread_time()

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        try:
            result = work()
        finally:
            done.set()
            thread.join()
        latest.update(self.sample().ticks)
        seconds = cpu_seconds_between(first, CpuSample(latest))
        seconds["client"] = max(0.0, seconds["client"] - sampler_s)
        return result, seconds


def cpu_seconds_between(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """CPU seconds per group between two samples (a process new in ``after`` counts in full)."""
    seconds = dict.fromkeys(GROUPS, 0.0)
    for (group, pid), used in after.ticks.items():
        seconds[group] += (used - before.ticks.get((group, pid), 0)) / _TICKS_PER_S
    return seconds
