"""Issue #14, fenced workers: an evaluation stays fresh through a long stage outside the sandbox, and once a
worker has been taken for dead and replaced, it records nothing: one evaluation, one result."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from benchmark.leaderboard import services as service
from benchmark.leaderboard.services import submission_create, submission_evaluate, submissions_reap
from benchmark.models import Submission, SubmissionStatus
from tests.benchmark.conftest import FAST_SANDBOX, build, make_corpus
from tests.benchmark.test_submissions import good_model
from tests.broker import EVALUATION, Enqueued
from tests.factories import UserFactory


@pytest.mark.django_db(transaction=True)  # the heartbeat thread and the second worker see only committed rows
def test_an_evaluation_has_one_live_worker_and_its_heartbeat_outlives_silent_stages(settings, monkeypatch, caplog):
    settings.SUBMISSION_SANDBOX = FAST_SANDBOX
    settings.SUBMISSION_HEARTBEAT_STALE_SECONDS = 1
    settings.SUBMISSION_HEARTBEAT_SECONDS = 0.1
    make_corpus(speakers=10, clips_each=1)  # the fewest speakers that give a release a hidden split
    build("v1")
    queued = Enqueued(*EVALUATION)
    submission = submission_create(user=UserFactory(), file=good_model(), name="m")
    assert queued == [(submission.pk, None)]  # on the test broker, which no worker reads: the test plays them
    rows = Submission.objects.filter(pk=submission.pk)

    # Reading a large release's manifest and audio takes minutes before the sandbox starts: worker 1 is held there
    # until worker 2, which claims the evaluation after worker 1 was taken for dead, reaches the same point.
    entries = service.release_public_entries
    held, go = threading.Event(), threading.Event()
    while_worker_2_runs: list[tuple] = []

    def a_long_read(*, release):
        if threading.current_thread() is worker_1:
            held.set()
            assert go.wait(60)
        else:
            go.set()
            worker_1.join(60)
            row = rows.get()
            while_worker_2_runs.append((row.status, row.claims, row.results.count()))
        return entries(release=release)

    def evaluate() -> None:
        try:
            submission_evaluate(submission_id=submission.pk)
        finally:
            connection.close()

    monkeypatch.setattr(service, "release_public_entries", a_long_read)
    worker_1 = threading.Thread(target=evaluate)
    worker_1.start()
    try:
        assert held.wait(60)
        time.sleep(2.5)  # more than twice the stale limit in a stage that beats nothing itself
        assert timezone.now() - rows.get().heartbeat_at < timedelta(seconds=1)
        assert submission_evaluate(submission_id=submission.pk) is None  # a redelivery leaves it to worker 1
        assert rows.get().claims == 1

        # Worker 1 goes silent past the stale limit (a lost network, a paused process): the reaper re-queues the
        # evaluation. Its heartbeat thread waits behind this transaction, then finds the claim gone.
        with transaction.atomic():
            rows.update(heartbeat_at=timezone.now() - timedelta(minutes=5))
            assert submissions_reap()["requeued"] == 1
        evaluated = submission_evaluate(submission_id=submission.pk)  # worker 2; worker 1 resumes meanwhile
    finally:
        go.set()
        worker_1.join(60)

    # Worker 1 carried on while worker 2 held the evaluation, and recorded nothing.
    assert while_worker_2_runs == [(SubmissionStatus.RUNNING, 2, 0)]
    assert evaluated.status == SubmissionStatus.SUCCEEDED and evaluated.claims == 2, evaluated.failure_detail
    assert evaluated.results.count() == 1 and evaluated.attempts == 2
    stops = [r for r in caplog.records if "stops: it is no longer this worker's" in r.getMessage()]
    assert len(stops) == 1 and stops[0].exc_info is None
