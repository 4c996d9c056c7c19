"""Release builds are fenced and reaped: a build whose worker went silent is re-queued (a bounded number of times,
then failed with the reason), a live one is left alone, and a superseded builder's final writes change nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from benchmark import tasks
from benchmark.models import Release, ReleaseFile, ReleaseStatus
from benchmark.releases import services as service
from benchmark.releases.services import release_build, release_create, releases_reap
from core.fencing import Superseded
from tests.benchmark.conftest import make_corpus

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(task_sends) -> list[int]:
    """The builds the services send (after commit), instead of sending them to a broker."""
    return task_sends(tasks.release_build)


@pytest.fixture
def claimed(db, settings) -> Release:
    """A release whose build a worker claimed (attempt 1) and then died in: nothing more happens to the row."""
    settings.RELEASE_HEARTBEAT_STALE_SECONDS = 60
    settings.RELEASE_MAX_ATTEMPTS = 2
    make_corpus(speakers=6, clips_each=1)
    release = release_create(version="v1")
    assert service._claim(release.pk) is not None
    release.refresh_from_db()
    assert (release.attempts, release.claims) == (1, 1)
    return release


def go_silent(release: Release, seconds: float = 120) -> None:
    Release.objects.filter(pk=release.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_a_stale_build_is_requeued_once_after_commit(claimed, enqueued, django_capture_on_commit_callbacks):
    go_silent(claimed)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert releases_reap() == {"requeued": 1, "failed": 0}
    assert len(callbacks) == 1 and enqueued == [claimed.pk]
    claimed.refresh_from_db()
    assert claimed.status == ReleaseStatus.BUILDING and claimed.started_at is None and claimed.heartbeat_at is None
    assert claimed.claims == 2  # the silent worker's token no longer holds the row

    assert releases_reap() == {"requeued": 0, "failed": 0}  # waiting for a worker: not reaped twice
    assert enqueued == [claimed.pk]


def test_a_build_with_a_fresh_heartbeat_is_left_alone(claimed, enqueued):
    go_silent(claimed, seconds=30)  # within the 60 s stale time
    assert releases_reap() == {"requeued": 0, "failed": 0}
    assert service._claim(claimed.pk) is None  # a redelivered message leaves it to its live worker too
    claimed.refresh_from_db()
    assert (claimed.attempts, claimed.claims) == (1, 1) and enqueued == []


def test_a_redelivery_takes_over_a_silent_build_and_removes_the_dead_attempts_staging(claimed, settings):
    dead = service._staging_dir(claimed)  # what a SIGKILLed attempt leaves behind
    (dead / "public").mkdir()
    (dead / "public" / "half-written.wav").write_bytes(b"RIFF")
    go_silent(claimed)

    again = service._claim(claimed.pk)

    assert again is not None and (again.attempts, again.claims) == (2, 2)
    assert not dead.exists()


def test_attempts_are_bounded_then_the_build_fails_with_the_reason(claimed, enqueued, settings):
    stored = Path(settings.MEDIA_ROOT) / claimed.storage_prefix
    stored.mkdir(parents=True)
    (stored / "manifest.jsonl").write_text("{}\n")  # half-published by the last attempt
    Release.objects.filter(pk=claimed.pk).update(attempts=2)
    go_silent(claimed)

    assert service._claim(claimed.pk) is None  # no attempt left for a redelivered message either
    assert releases_reap() == {"requeued": 0, "failed": 1}

    claimed.refresh_from_db()
    assert claimed.status == ReleaseStatus.FAILED and enqueued == []
    assert "lost on each of its 2 attempts" in claimed.error and claimed.finished_at is not None
    assert not stored.exists()
    # Building the failed version again starts a new count of attempts.
    again = release_create(version="v1")
    assert again.status == ReleaseStatus.BUILDING and again.attempts == 0 and again.claims == 2


def test_a_superseded_builders_commit_changes_nothing(claimed, settings, enqueued):
    """The worker is taken for dead during its build (the reaper re-queues it, a second worker claims it); when it
    comes back with its build staged, it publishes nothing and records nothing."""
    first = service.release_fence(claimed)
    staging = service._staging_dir(claimed)
    for part in ("public", "private"):
        (staging / part).mkdir()
        (staging / part / "manifest.jsonl").write_text("{}\n")
    go_silent(claimed)
    assert releases_reap()["requeued"] == 1
    assert service._claim(claimed.pk) is not None  # the second worker's claim

    with pytest.raises(Superseded):
        service._commit_ready(claimed, service.Built(), fence=first, staging=staging)

    claimed.refresh_from_db()
    assert claimed.status == ReleaseStatus.BUILDING and (claimed.attempts, claimed.claims) == (2, 3)
    assert claimed.finished_at is None and not ReleaseFile.objects.filter(release=claimed).exists()
    assert not (Path(settings.MEDIA_ROOT) / claimed.storage_prefix).exists()
    assert not (Path(settings.MEDIA_ROOT) / claimed.private_prefix).exists()


def test_a_superseded_builders_failure_changes_nothing(db, settings, monkeypatch, enqueued):
    settings.RELEASE_HEARTBEAT_STALE_SECONDS = 60
    make_corpus(speakers=6, clips_each=1)
    release = release_create(version="v1")

    def taken_over_then_broken(release: Release, **kwargs):
        go_silent(release)
        releases_reap()
        service._claim(release.pk)
        raise OSError("disk full")

    monkeypatch.setattr(service, "write_release", taken_over_then_broken)
    returned = release_build(release_id=release.pk)

    assert returned.status == ReleaseStatus.BUILDING and returned.error == ""


def test_the_reaper_is_on_the_beat_schedule(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "benchmark.tasks.releases_reap" in tasks
