"""Real Celery worker processes for the integration tests: a fresh broker, the test database's URL, the environment
the workers run in, starting them, waiting on them, and stopping whichever still run when a test ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import require_service, xdist_worker_index

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def broker_for(kind: str, tmp_path: Path) -> tuple[str, dict]:
    """A fresh broker: ``redis`` (a database of its own per pytest worker), else the embedded SQLite broker."""
    if kind == "redis":
        require_service("Redis", "127.0.0.1", 6379)
        import redis

        # Tests on different pytest workers never read each other's queues; TEST_REDIS_DB pins one database for
        # a run beside others on the same Redis.
        db = int(os.environ.get("TEST_REDIS_DB") or 14 - xdist_worker_index() % 12)
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()
        return f"redis://127.0.0.1:6379/{db}", {}
    return f"sqlite:///{tmp_path / 'data' / 'broker.sqlite3'}", {}


def worker_env(broker_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """What a worker runs with: this process's environment, the test database, ``broker_url``, a DATA_DIR under
    ``tmp_path`` and the test's MEDIA_ROOT, and ``extra`` over them."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        "DATA_DIR": str(tmp_path / "data"),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        **extra,
    }


def start_worker(env: dict[str, str], log: Path, queue: str, *pool: str) -> subprocess.Popen:
    """A worker on ``queue`` with the ``pool`` options (``--pool threads --concurrency 2``...), its output
    appended to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config.worker", "worker", "-Q", queue, *pool,
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_until(condition: Callable[[], bool], timeout: float, worker: subprocess.Popen, log: Path) -> None:
    """Until ``condition()`` holds; the test fails, with the end of the worker's log, if the worker exits first or
    ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if worker.poll() is not None:
            pytest.fail(f"the worker exited with {worker.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out; worker log:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop_workers(*workers: subprocess.Popen | None) -> None:
    """Terminate those still running (None: one not started), so that a failing test leaves none behind."""
    for worker in workers:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=30)
