"""A real Celery worker process completes a real task: on Redis, and on the embedded filesystem broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection
from kombu import Connection

from contributors.services.clips import clip_submit
from tests.conftest import require_service, xdist_worker_index
from tests.factories import ContributorFactory, PromptFactory, speechlike, wav_bytes

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def broker_for(kind: str, tmp_path: Path) -> tuple[str, dict]:
    if kind == "redis":
        require_service("Redis", "127.0.0.1", 6379)
        import redis

        db = 14 - xdist_worker_index() % 12  # tests on different pytest workers never read each other's queues
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()
        return f"redis://127.0.0.1:6379/{db}", {}
    folder = tmp_path / "data" / "broker"
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True)
    return "filesystem://localhost/", {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
    }


@pytest.mark.parametrize("broker", ["redis", "filesystem"])
def test_a_worker_analyses_a_clip_committed_by_the_web_process(broker, tmp_path):
    broker_url, transport_options = broker_for(broker, tmp_path)
    clip = clip_submit(
        contributor=ContributorFactory(), prompt_id=PromptFactory().pk, data=wav_bytes(speechlike(2.0))
    ).clip
    assert clip.analysed_at is None

    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        "DATA_DIR": str(tmp_path / "data"),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default", "--pool", "solo",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        # An explicit connection: Celery lets the CELERY_BROKER_URL environment variable override an app's
        # broker argument, and the test process points that variable at an in-memory broker.
        with Connection(broker_url, transport_options=transport_options) as conn:
            Celery().send_task("contributors.tasks.clip_analyse", args=[clip.pk], queue="default", connection=conn)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and worker.poll() is None:
            clip.refresh_from_db()
            if clip.analysed_at is not None:
                break
            time.sleep(0.25)
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)

    assert clip.analysed_at is not None, output[-3000:]
    assert 0.2 < clip.speech_ratio <= 1.0
    assert clip.snr_db > 10
    assert "contributors.tasks.clip_analyse" in output and "succeeded" in output


def test_celery_is_configured_for_long_idempotent_tasks():
    from config.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert not app.conf.task_always_eager
    assert {q.name for q in app.conf.task_queues} == {"default", "gpu", "eval"}
    assert app.amqp.router.route({}, "training.tasks.run_train")["queue"].name == "gpu"
    assert app.amqp.router.route({}, "benchmark.tasks.submission_evaluate")["queue"].name == "eval"
    assert app.amqp.router.route({}, "contributors.tasks.clip_analyse")["queue"].name == "default"
    assert settings.CELERY_VISIBILITY_TIMEOUT >= 6 * 3600
