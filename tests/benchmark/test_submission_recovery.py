"""Issue #16: a model that kills its worker on every try fails with ``eval_worker_lost`` and pays for it in quota;
re-evaluations (a new release's re-score, an operator's re-run) beat the heartbeat the reaper relies on."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from benchmark.leaderboard import services as service
from benchmark.leaderboard.services import failure_sentence, submission_evaluate, submissions_reap
from benchmark.models import Submission, SubmissionResult, SubmissionStatus
from tests.benchmark.conftest import build
from tests.benchmark.test_leaderboard import ready_release, scored
from tests.benchmark.test_submission_hardening import post
from tests.benchmark.test_submissions import good_model

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(fast_sandbox, settings):
    settings.SUBMISSION_MAX_RECOVERIES = 2


@pytest.fixture
def client(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def worker_dies(settings, model, **row) -> None:
    """A worker claimed the evaluation, then died: its heartbeat goes stale."""
    silent = timezone.now() - timedelta(seconds=settings.SUBMISSION_HEARTBEAT_STALE_SECONDS + 5)
    model.objects.filter(**row).update(heartbeat_at=silent, started_at=silent)


def test_a_model_that_kills_its_worker_every_time_fails_and_uses_quota(
    client, enqueued, settings, django_capture_on_commit_callbacks
):
    submission_id = post(client, good_model()).json()["id"]
    enqueued.clear()

    for attempt in (1, 2, 3):
        submission, running = service._claim(submission_id, None)  # a worker starts the evaluation ...
        assert (submission.attempts, running) == (attempt, None)
        worker_dies(settings, Submission, pk=submission_id)  # ... and dies with it
        with django_capture_on_commit_callbacks(execute=True):
            reaped = submissions_reap()
        assert (reaped["requeued"], reaped["failed"]) == ((1, 0) if attempt <= 2 else (0, 1))

    assert enqueued == [(submission_id, None), (submission_id, None)]  # two recoveries, then no more
    body = client.get(f"/api/v1/submissions/{submission_id}").json()
    assert (body["status"], body["failure_code"]) == ("failed", "eval_worker_lost")
    assert body["failure_message"] == failure_sentence("eval_worker_lost") and "counts" in body["failure_message"]
    assert client.get("/api/v1/submissions/mine").json()["quota_left"] == 2  # the failure costs its place
    assert submission_evaluate(submission_id=submission_id) is None  # a late redelivery does nothing


def test_the_quota_holds_against_worker_kills(client, enqueued, settings):
    """Three models that each kill their worker on every try use up the day's quota: the fourth upload is a 429."""
    for _ in range(3):
        submission_id = post(client, good_model()).json()["id"]
        for _attempt in range(3):
            service._claim(submission_id, None)
            worker_dies(settings, Submission, pk=submission_id)
            submissions_reap()
        assert Submission.objects.get(pk=submission_id).failure_code == "eval_worker_lost"

    refused = post(client, good_model())
    assert refused.status_code == 429 and refused.json()["code"] == "quota_exhausted"
    assert refused.json()["message"]


def test_a_reevaluation_beats_its_heartbeat_on_its_result_row(release, user, enqueued, settings, monkeypatch):
    settings.SUBMISSION_HEARTBEAT_SECONDS = 0.05
    first = service.submission_create(user=user, file=good_model(), name="m")
    assert submission_evaluate(submission_id=first.pk).status == SubmissionStatus.SUCCEEDED
    newer = build("v2")
    beat = service._result_heartbeat
    seen: list[tuple] = []

    def watched(result_id: int, attempt: int) -> bool:
        row = SubmissionResult.objects.get(pk=result_id)
        seen.append((row.release.version, row.succeeded, row.heartbeat_at is not None, attempt))
        return beat(result_id, attempt)

    monkeypatch.setattr(service, "_result_heartbeat", watched)
    submission_evaluate(submission_id=first.pk, release_id=newer.pk)

    assert seen and seen[0] == ("v2", None, True, 1)  # running, beating, on its own row
    row = SubmissionResult.objects.get(submission=first, release=newer)
    assert row.succeeded is True and row.per_hidden is not None and row.attempts == 1


def test_a_reevaluation_whose_worker_died_is_recovered_then_failed_on_its_release(enqueued, settings):
    old, new = ready_release("v1"), ready_release("v2")
    submission = scored(old, "m", per=0.2, parameters=10, depth=1).submission

    for attempt in (1, 2, 3):
        _, running = service._claim(submission.pk, new.pk)
        assert running.succeeded is None and running.attempts == attempt
        assert service._claim(submission.pk, new.pk) is None  # a redelivery while the worker lives
        worker_dies(settings, SubmissionResult, pk=running.pk)
        enqueued.clear()
        reaped = submissions_reap()
        assert (reaped["requeued"], reaped["failed"]) == ((1, 0) if attempt <= 2 else (0, 1))
        assert submissions_reap()["requeued"] == 0  # re-queued once, not at every sweep
        if attempt > 1:
            assert not service._result_heartbeat(running.pk, attempt - 1)  # a worker taken for dead stops

    row = SubmissionResult.objects.get(submission=submission, release=new)
    assert (row.succeeded, row.failure_code) == (False, "eval_worker_lost")
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.SUCCEEDED  # its first result stands
    assert APIClient().get("/api/v1/leaderboard/?release=v2").json()["results"] == []
    assert service._claim(submission.pk, new.pk) is None  # failed there: only an operator's re-run retries


def test_the_reaper_requeues_a_reevaluation_with_its_release(enqueued, settings, django_capture_on_commit_callbacks):
    old, new = ready_release("v1"), ready_release("v2")
    submission = scored(old, "m", per=0.2, parameters=10, depth=1).submission
    _, running = service._claim(submission.pk, new.pk)
    worker_dies(settings, SubmissionResult, pk=running.pk)

    with django_capture_on_commit_callbacks(execute=True):
        submissions_reap()

    assert enqueued == [(submission.pk, new.pk)]


def test_an_operators_rerun_goes_through_the_heartbeat_path(admin_client, enqueued, django_capture_on_commit_callbacks):
    old, new = ready_release("v1"), ready_release("v2")
    succeeded = scored(old, "scored", per=0.2, parameters=10, depth=1).submission
    SubmissionResult.objects.create(submission=succeeded, release=new, succeeded=False, failure_code="eval_crashed")
    failed = scored(old, "failed", per=0.3, parameters=10, depth=1).submission
    Submission.objects.filter(pk=failed.pk).update(status=SubmissionStatus.FAILED, attempts=3, failure_code="x")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/benchmark/submission/", {"action": "rerun", "_selected_action": [succeeded.pk, failed.pk]}
        )

    assert response.status_code == 302
    assert set(enqueued) == {(succeeded.pk, new.pk), (failed.pk, None)}
    assert not SubmissionResult.objects.filter(submission=succeeded, release=new).exists()  # the failure goes
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.failure_code) == (SubmissionStatus.QUEUED, 0, "")
    _, running = service._claim(succeeded.pk, new.pk)  # the re-run's worker holds a beating row
    assert running.heartbeat_at is not None and running.succeeded is None


@pytest.mark.django_db(transaction=True)
def test_a_silent_evaluation_whose_row_is_locked_is_skipped_then_reaped_once_free(user, enqueued, settings):
    """The reaper (core.fencing.reap_silent, as for builds and training runs) does not wait behind a row that
    another transaction holds (a worker's final write, a new claim, a cancel): it leaves it to that transaction,
    and its next run re-queues the row if it is still silent."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are shown against PostgreSQL (CI); SQLite has no SELECT ... FOR UPDATE SKIP LOCKED")
    submission = service.submission_create(user=user, file=good_model(), name="m")
    enqueued.clear()  # the upload's own evaluation
    service._claim(submission.pk, None)
    worker_dies(settings, Submission, pk=submission.pk)
    locked, done = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                Submission.objects.select_for_update().get(pk=submission.pk)
                locked.set()
                done.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        assert submissions_reap()["requeued"] == 0  # skipped at once, not waited for
    finally:
        done.set()
        holder.join()

    assert submissions_reap()["requeued"] == 1
    assert Submission.objects.get(pk=submission.pk).status == SubmissionStatus.QUEUED
    assert enqueued == [(submission.pk, None)]
