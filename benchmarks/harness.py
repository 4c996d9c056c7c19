"""What the server benchmarks share: a scratch site (a fresh PostgreSQL database and DATA_DIR, Django set up on them
in the benchmark's own process), gunicorn on a free port, and the machine a report names.

A scratch site is torn down on the way out, even on error or SIGTERM: the database is dropped (only one the run
created: an existing one is refused, never reused), the folder removed, gunicorn stopped. Used by
``benchmarks/upload.py``, ``upload_memory.py``, ``vote_api.py``, ``trust_db.py`` and ``load.py``; ``trust.py`` takes
the machine's name from it.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
HEALTH_TIMEOUT_S = 120.0


# --- the scratch database and Django -------------------------------------------------------------------------------
def admin_conninfo(database_url: str) -> tuple[str, str]:
    """(the URL of the server's ``postgres`` database, the benchmark database's name)."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if parts.scheme not in {"postgres", "postgresql"} or not name:
        raise SystemExit(f"--database-url must be postgres://user@host:port/name, not {database_url!r}")
    return urlunsplit(parts._replace(scheme="postgresql", path="/postgres")), name


@contextmanager
def bench_database(database_url: str) -> Iterator[str]:
    """Create the database, yield the server's version, drop the database."""
    admin_url, name = admin_conninfo(database_url)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:  # never drop what this run did not create
            raise SystemExit(f"database {name!r} already exists; drop it or pass another --database-url")
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        version = str(admin.execute("SHOW server_version").fetchone()[0])
    try:
        yield version
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def service_env(database_url: str, data_dir: Path) -> dict[str, str]:
    """The settings both the in-process service and gunicorn run with."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "MEDIA_ROOT": str(data_dir / "media"),
        "CELERY_BROKER_URL": "memory://",  # enqueueing analysis stays in-process and cheap
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DEBUG": "false",  # with DEBUG on Django keeps every query in memory
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def close_django_connections() -> None:
    from django.db import connections

    connections.close_all()


@dataclass(frozen=True)
class Site:
    data_dir: Path
    env: dict[str, str]  # what the benchmark's process was set up with, and what gunicorn is to run with
    postgres_version: str
    load_before: str  # the load average before the site was set up: what other work there was, for the report


@contextmanager
def scratch_site(database_url: str, *, prefix: str, env: Mapping[str, str] | None = None) -> Iterator[Site]:
    """A fresh database at ``database_url`` and a temporary DATA_DIR (named ``prefix``...), Django set up and
    migrated on them in this process with :func:`service_env` and ``env`` over it; on the way out this process's
    connections are closed (before the database is dropped: a session open on it would hold the drop), the database
    dropped and the folder removed. While it is open SIGTERM unwinds like Ctrl-C, so a killed benchmark still tears
    down whatever it started inside (gunicorn, workers)."""
    load_before = load_average()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with ExitStack() as stack:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
            postgres_version = stack.enter_context(bench_database(database_url))
            site_env = {**service_env(database_url, data_dir), **(env or {})}
            print(f"setting up {database_url} and Django in {data_dir} ...", flush=True)
            django_setup(site_env)
            stack.callback(close_django_connections)
            yield Site(data_dir=data_dir, env=site_env, postgres_version=postgres_version, load_before=load_before)
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- gunicorn ------------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn_process(
    env: dict[str, str], workers: int, log_path: Path, *, threads: int = 1, timeout_s: float | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start gunicorn on the app (sync workers, or gthread with ``threads`` > 1; ``timeout_s``: its worker timeout,
    gunicorn's 30 s when None), wait until /healthz answers, yield its base URL and its master process; stop it on
    the way out."""
    port = free_port()
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
    ]
    if threads > 1:
        command += ["--worker-class", "gthread", "--threads", str(threads)]
    if timeout_s is not None:
        command += ["--timeout", str(int(timeout_s))]
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, server, log_path)
        yield base_url, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def gunicorn_server(env: dict[str, str], workers: int, log_path: Path, threads: int = 1) -> Iterator[str]:
    """:func:`gunicorn_process`, yielding its base URL alone."""
    with gunicorn_process(env, workers, log_path, threads=threads) as (base_url, _):
        yield base_url


def wait_healthy(base_url: str, server: subprocess.Popen, log_path: Path) -> None:
    """Until /healthz answers 200 (the workers import Django on their first request, slowly when several
    start at once on two cores)."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}:\n{log_tail(log_path)}")
        try:
            if requests.get(f"{base_url}/healthz", timeout=10).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or a worker still importing Django
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer /healthz in {HEALTH_TIMEOUT_S:g} s:\n{log_tail(log_path)}")


def log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def token_session(token: str) -> requests.Session:
    """A session (close it, or use it in ``with``) whose every request carries the API ``token``, as a client
    signed in with one sends it."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    return session


# --- measuring and reporting ---------------------------------------------------------------------------------------
@contextmanager
def single_core() -> Iterator[None]:
    """Pin this process to one CPU (Linux); other processes, PostgreSQL included, keep the rest."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def machine_line(*versions: str) -> str:
    """A report's line naming the machine: the CPU model, its cores, and ``versions`` (``"PostgreSQL 16.4"``...),
    the software the numbers depend on."""
    return ", ".join([f"machine: {cpu_model()}", f"{os.cpu_count()} cores", *versions])


def load_before_line(load_before: str) -> str:
    """A report's line with :attr:`Site.load_before`: the numbers are only as clean as the machine was idle."""
    return f"load average before the run (1/5/15 min): {load_before}; other work on the machine skews every row"


def client_levels(text: str) -> list[int]:
    """``--clients 1,4,8`` (an argparse ``type``): how many clients run at once, one level after another."""
    try:
        levels = [int(level) for level in text.split(",") if level.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: whole numbers of at least 1, separated by commas")
    return levels


def print_failures(rows: Iterable[Any], most: int = 5) -> None:
    """The first ``most`` failures of each row (a row: its ``path``, ``clients`` and ``failures``)."""
    for row in rows:
        for failure in row.failures[:most]:
            print(f"  {row.path} x{row.clients}: {failure}")
