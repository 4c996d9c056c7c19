"""A real gpu-queue worker trains a run, on Redis and on the embedded SQLite broker; killed with SIGKILL mid-run,
the task is redelivered to a new worker, which resumes from the last checkpoint, and the run finishes exactly
once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from kombu import Connection

from benchmark.models import Submission
from tests.benchmark.conftest import build, make_corpus
from tests.config.test_celery_worker import broker_for, database_url
from tests.training.runs import write_base_config
from training.models import TrainingRunStatus
from training.services.runs import run_create

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
EPOCHS = 6


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config.worker", "worker", "-Q", "gpu", "--pool", "solo",
         "--prefetch-multiplier", "1", "--without-heartbeat", "--without-gossip", "--without-mingle",
         "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_for(predicate, timeout: float, worker: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if worker.poll() is not None:
            pytest.fail(f"the worker exited with {worker.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"timed out; worker log:\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize("broker", ["redis", "embedded"])
def test_a_run_killed_mid_training_is_redelivered_resumed_and_finished_once(broker, tmp_path):
    broker_url, transport_options = broker_for(broker, tmp_path)
    make_corpus(speakers=16, clips_each=3)
    build("v1")
    # Wide enough that an epoch takes about a second here, so the kill lands between the first and the last.
    base = write_base_config(tmp_path, model={"depth": 3, "width": 512}, train={"epochs": EPOCHS, "batch_size": 64})
    run = run_create(release="v1", recipe="teacher-dnn", base_config=base, enqueue=False)

    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_VISIBILITY_TIMEOUT": "3",  # Redis: a dead worker's task comes back after 3 s, not 12 h
        "DATA_DIR": str(tmp_path / "data"),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "TRAINING_DIR": str(tmp_path / "training"),
        "TRAINING_HEARTBEAT_STALE_SECONDS": "3",
        "TRAINING_PROGRESS_SECONDS": "0",
        "OMP_NUM_THREADS": "1",
    }
    log = tmp_path / "workers.log"
    first = start_worker(env, log)
    second = None
    try:
        with Connection(broker_url, transport_options=transport_options) as conn:
            Celery().send_task("training.tasks.run_train", args=[run.pk], queue="gpu", connection=conn)

        def some_epochs_done() -> bool:
            run.refresh_from_db()
            return 1 <= len(run.history) < EPOCHS - 2

        wait_for(some_epochs_done, 180, first, log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        run.refresh_from_db()
        killed_at = len(run.history)
        assert run.status == TrainingRunStatus.RUNNING and killed_at < EPOCHS

        second = start_worker(env, log)

        def finished() -> bool:
            run.refresh_from_db()
            return run.is_finished

        wait_for(finished, 240, second, log)
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)

    run.refresh_from_db()
    assert run.status == TrainingRunStatus.SUCCEEDED, run.log
    assert run.attempts == 2 and "went silent" in run.log
    # Every epoch exactly once, in order: the second worker resumed after the last checkpoint.
    assert [r["epoch"] for r in run.history] == list(range(1, EPOCHS + 1))
    assert run.log.count("epoch 1/") == 1
    assert Submission.objects.filter(is_baseline=True).count() == 1
    assert run.submission is not None
