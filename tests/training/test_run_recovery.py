"""Training runs whose worker died are reaped like release builds and evaluations: a run silent past the stale time
is queued again (the dead worker's fenced writes then change nothing, and the next claim resumes it under a new
attempt), a live one is left alone, and a run lost too many times fails with ``worker_lost``, its students with it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from benchmark.models import Release, ReleaseStatus
from core.fencing import Superseded
from tests.training.runs import write_base_config
from training import tasks
from training.models import TrainingRun, TrainingRunStatus
from training.services import execution
from training.services.recovery import runs_reap
from training.services.runs import run_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(task_sends) -> list[int]:
    """The runs the reaper sends (after commit), instead of sending them to a broker."""
    return task_sends(tasks.run_train)


@pytest.fixture
def runs(settings, tmp_path):
    """Two running teacher runs on a ready release, each on its first claim: one heard from a minute ago, one ten."""
    settings.TRAINING_BASE_CONFIG = write_base_config(tmp_path)
    settings.TRAINING_HEARTBEAT_STALE_SECONDS = 300
    Release.objects.create(version="v1", status=ReleaseStatus.READY)
    now = timezone.now()
    made = []
    for minutes in (1, 10):
        run = run_create(release="v1", recipe="teacher-dnn", enqueue=False)
        TrainingRun.objects.filter(pk=run.pk).update(
            status=TrainingRunStatus.RUNNING,
            attempts=1,
            worker=f"gpu-{minutes}:1",
            started_at=now - timedelta(minutes=30),
            heartbeat_at=now - timedelta(minutes=minutes),
        )
        run.refresh_from_db()
        made.append(run)
    return made


def test_a_silent_run_is_queued_again_its_dead_worker_fenced_out_and_the_next_claim_resumes_it(
    runs, enqueued, django_capture_on_commit_callbacks
):
    live, silent = runs
    dead_workers_fence = execution.run_fence(silent)

    with django_capture_on_commit_callbacks(execute=True):
        assert runs_reap() == {"requeued": 1, "failed": 0}

    assert enqueued == [silent.pk]
    silent.refresh_from_db()
    live.refresh_from_db()
    assert silent.status == TrainingRunStatus.QUEUED and silent.heartbeat_at is None
    assert "worker gpu-10:1 went silent" in silent.log and silent.log.rstrip().endswith("queued again")
    assert live.status == TrainingRunStatus.RUNNING and live.attempts == 1  # a live worker's run is left alone
    with pytest.raises(Superseded):  # the silent worker, if it ever comes back, writes nothing
        dead_workers_fence.update(progress={"epoch": 9})

    outcome, claimed = execution._claim(silent.pk)  # what the redelivered task does first
    assert outcome == execution.Outcome.CLAIMED and claimed.attempts == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert runs_reap() == {"requeued": 0, "failed": 0}  # beating again: nothing to reap
    assert enqueued == [silent.pk]


def test_a_run_lost_on_every_attempt_fails_with_worker_lost_and_so_do_its_students(
    runs, enqueued, settings, django_capture_on_commit_callbacks
):
    settings.TRAINING_MAX_ATTEMPTS = 1
    _, silent = runs
    student = run_create(release="v1", recipe="mimic", teacher=silent.pk)  # waits for its teacher

    with django_capture_on_commit_callbacks(execute=True):
        assert runs_reap() == {"requeued": 0, "failed": 1}

    silent.refresh_from_db()
    student.refresh_from_db()
    assert silent.status == TrainingRunStatus.FAILED and silent.error_code == "worker_lost"
    assert "lost on each of its 1 attempts" in silent.error and silent.finished_at is not None
    assert student.status == TrainingRunStatus.FAILED and student.error_code == "teacher_failed"
    assert enqueued == []


def test_the_reaper_is_on_the_beat_schedule_on_the_default_queue(settings):
    from config.celery import app

    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "training.tasks.runs_reap")
    assert entry["schedule"] <= 60
    # Not the gpu queue: a training run would hold its worker for hours while the reaper waited behind it.
    assert app.amqp.router.route({}, "training.tasks.runs_reap")["queue"].name == "default"
