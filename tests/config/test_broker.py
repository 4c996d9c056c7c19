"""The embedded broker (config.broker): a message stays until it is acknowledged, a live consumer's lease holds,
and a dead consumer's message, or one given back, is handed out again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from kombu import Connection

from config.broker import database_path

ROOT = Path(__file__).resolve().parents[2]

# A consumer in a process of its own: takes one message, says which, and holds it unacknowledged.
TAKE_AND_HOLD = """
import sys, time
from config import broker
broker.register()
from kombu import Connection
with Connection(sys.argv[1]) as conn:
    print(conn.SimpleQueue("jobs").get(timeout=30).payload, flush=True)
    time.sleep(120)
"""


def take(url: str):
    """The next message for a consumer that has just connected (a new channel looks for dead leases first)."""
    with Connection(url) as conn:
        queue = conn.SimpleQueue("jobs")
        try:
            message = queue.get(block=False)
        except queue.Empty:
            return None
        message.ack()
        return message.payload


def rows(url: str) -> int:
    with closing(sqlite3.connect(database_path(url))) as db:
        return db.execute("SELECT count(*) FROM message").fetchone()[0]


def test_a_dead_consumers_message_comes_back_and_a_live_ones_does_not(tmp_path):
    url = f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    with Connection(url) as conn:
        for job in ("first", "second"):
            conn.SimpleQueue("jobs").put(job)
    holder = subprocess.Popen([sys.executable, "-c", TAKE_AND_HOLD, url], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "first"
        assert take(url) == "second"
        assert take(url) is None  # "first" is leased to a consumer that lives
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert take(url) == "first"
    assert take(url) is None and rows(url) == 0  # acknowledged messages are gone


def test_a_message_given_back_or_left_unacknowledged_at_close_is_delivered_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'broker.sqlite3'}"
    with Connection(url) as conn:
        queue = conn.SimpleQueue("jobs")
        queue.put("job")
        queue.get(block=False).requeue()  # a worker whose pool process died rejects with requeue
        queue.get(block=False)  # and then closes without acknowledging (a warm shutdown's prefetched work)
    assert take(url) == "job"
    assert rows(url) == 0


def test_only_a_sqlite_url_with_a_path_names_the_broker_file():
    assert database_path("sqlite:////var/lib/broker.sqlite3") == Path("/var/lib/broker.sqlite3")
    assert database_path("sqlite:///var/broker.sqlite3") == Path("var/broker.sqlite3")
    with pytest.raises(ValueError, match="not a sqlite broker URL"):
        database_path("sqlite://")


def test_the_default_broker_is_the_embedded_one_and_the_filesystem_transport_is_refused(tmp_path):
    read_setting = "from django.conf import settings; print(settings.CELERY_BROKER_URL)"
    env = {key: value for key, value in os.environ.items() if key != "CELERY_BROKER_URL"}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings", "DATA_DIR": str(tmp_path)}
    default = subprocess.run([sys.executable, "-c", read_setting], cwd=ROOT, env=env, capture_output=True, text=True)
    assert default.stdout.strip() == f"sqlite:///{tmp_path.resolve() / 'broker.sqlite3'}", default.stderr
    env["CELERY_BROKER_URL"] = "filesystem://localhost/"
    refused = subprocess.run([sys.executable, "-c", read_setting], cwd=ROOT, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "the filesystem transport loses the task of a worker" in refused.stderr
