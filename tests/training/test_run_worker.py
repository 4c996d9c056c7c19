"""A real gpu-queue worker trains a run (on the suite's broker); killed with SIGKILL mid-run,
the task is redelivered to a new worker, which resumes from the last checkpoint, and the run finishes exactly
once."""

from __future__ import annotations

import os
import signal

import pytest
from celery import Celery
from kombu import Connection

from benchmark.models import Submission
from tests.benchmark.conftest import build, make_corpus
from tests.celery_workers import broker_for, start_worker, stop_workers, wait_until, worker_env
from tests.training.runs import write_base_config
from training.models import TrainingRunStatus
from training.services.runs import run_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
EPOCHS = 6


# One task at a time (the solo pool), and no second message held while it trains (prefetch 1).
POOL = ("--pool", "solo", "--prefetch-multiplier", "1")


def test_a_run_killed_mid_training_is_redelivered_resumed_and_finished_once(tmp_path):
    # On the broker the suite runs with (Redis in CI, the embedded one on a laptop without it). That each broker
    # redelivers a killed worker's task is tests/config/test_celery_worker.py's, for both; what is the training's
    # own here (the resume from the last checkpoint, every epoch once) does not depend on the broker, and running
    # it on both cost the suite a minute of CPU.
    kind = "redis" if os.environ.get("CELERY_BROKER_URL", "").startswith("redis") else "embedded"
    broker_url, transport_options = broker_for(kind, tmp_path)
    make_corpus(speakers=16, clips_each=3)
    build("v1")
    # Wide enough that an epoch takes about a second here, so the kill lands between the first and the last.
    base = write_base_config(tmp_path, model={"depth": 3, "width": 512}, train={"epochs": EPOCHS, "batch_size": 64})
    run = run_create(release="v1", recipe="teacher-dnn", base_config=base, enqueue=False)

    env = worker_env(
        broker_url,
        tmp_path,
        CELERY_VISIBILITY_TIMEOUT="3",  # Redis: a dead worker's task comes back after 3 s, not 12 h
        TRAINING_DIR=str(tmp_path / "training"),
        TRAINING_HEARTBEAT_STALE_SECONDS="3",
        TRAINING_PROGRESS_SECONDS="0",
        OMP_NUM_THREADS="1",
    )
    log = tmp_path / "workers.log"
    first = start_worker(env, log, "gpu", *POOL)
    second = None
    try:
        with Connection(broker_url, transport_options=transport_options) as conn:
            Celery().send_task("training.tasks.run_train", args=[run.pk], queue="gpu", connection=conn)

        def some_epochs_done() -> bool:
            run.refresh_from_db()
            return 1 <= len(run.history) < EPOCHS - 2

        wait_until(some_epochs_done, 180, first, log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        run.refresh_from_db()
        killed_at = len(run.history)
        assert run.status == TrainingRunStatus.RUNNING and killed_at < EPOCHS

        second = start_worker(env, log, "gpu", *POOL)

        def finished() -> bool:
            run.refresh_from_db()
            return run.is_finished

        wait_until(finished, 240, second, log)
    finally:
        stop_workers(first, second)

    run.refresh_from_db()
    assert run.status == TrainingRunStatus.SUCCEEDED, run.log
    assert run.attempts == 2 and "went silent" in run.log
    # Every epoch exactly once, in order: the second worker resumed after the last checkpoint.
    assert [r["epoch"] for r in run.history] == list(range(1, EPOCHS + 1))
    assert run.log.count("epoch 1/") == 1
    assert Submission.objects.filter(is_baseline=True).count() == 1
    assert run.submission is not None
