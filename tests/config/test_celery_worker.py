"""A real Celery worker process completes a real task: on Redis, and on the embedded SQLite broker."""

from __future__ import annotations

import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection, transaction
from kombu import Connection

from benchmark.models import Release, ReleaseStatus
from benchmark.releases.services import release_create
from config.broker import database_path
from contributors.models import Clip
from contributors.services.clips import clip_submit
from tests.benchmark.conftest import make_corpus
from tests.celery_workers import broker_for, start_worker, stop_workers, wait_until, worker_env
from tests.factories import ContributorFactory, PromptFactory, speechlike, wav_bytes

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


# Threads: both tasks run at once in the one process that the SIGKILL ends, as a whole worker dies.
POOL = ("--pool", "threads", "--concurrency", "2")


def redis_copies(broker_url: str) -> list[tuple[str, tuple]]:
    """(task, args) of every message Redis still holds for the default queue, waiting or handed out."""
    import base64
    import json

    import redis

    client = redis.Redis.from_url(broker_url)
    raw = client.lrange("default", 0, -1) + [json.loads(v)[0] for v in client.hvals("unacked")]
    messages = [m if isinstance(m, dict) else json.loads(m) for m in raw]
    return [(m["headers"]["task"], tuple(json.loads(base64.b64decode(m["body"]))[0])) for m in messages]


def messages_left(broker_url: str) -> int:
    """Messages the broker still holds for the default queue, waiting or handed out and not acknowledged."""
    if broker_url.startswith("redis://"):
        import redis

        client = redis.Redis.from_url(broker_url)
        return client.llen("default") + client.hlen("unacked")
    with closing(sqlite3.connect(database_path(broker_url))) as db:
        return db.execute("SELECT count(*) FROM message WHERE queue = 'default'").fetchone()[0]


@pytest.mark.parametrize("broker", ["redis", "embedded"])
def test_the_work_of_a_killed_worker_is_redelivered_and_done_once(broker, tmp_path, settings):
    """SIGKILL a worker in the middle of a clip analysis and a release build; a new worker does both, once each."""
    broker_url, transport_options = broker_for(broker, tmp_path)
    make_corpus(speakers=6, clips_each=1)
    release = release_create(version="v1")
    clip = clip_submit(
        contributor=ContributorFactory(), prompt_id=PromptFactory().pk, data=wav_bytes(speechlike(2.0))
    ).clip
    assert clip.analysed_at is None

    # Redis: a dead worker's task comes back after 2 s, not 12 h.
    env = worker_env(broker_url, tmp_path, CELERY_VISIBILITY_TIMEOUT="2", OMP_NUM_THREADS="1")
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start_worker(env, first_log, "default", *POOL)
    second = None
    try:
        # The test holds the rows that each task writes first (the clip's attempt count, the release's claim),
        # so neither task can commit anything before the kill: the SIGKILL lands mid-task, every time.
        with transaction.atomic():
            Clip.objects.filter(pk=clip.pk).update(analysis_attempts=0)
            Release.objects.filter(pk=release.pk).update(started_at=None)
            # An explicit connection: Celery lets the CELERY_BROKER_URL environment variable override an app's
            # broker argument, and the test process points that variable at an in-memory broker.
            with Connection(broker_url, transport_options=transport_options) as conn:
                work = (("contributors.tasks.clip_analyse", clip.pk), ("benchmark.tasks.release_build", release.pk))
                for task, pk in work:
                    Celery().send_task(task, args=[pk], queue="default", connection=conn)
            wait_until(lambda: first_log.read_text().count("] received") == 2, 120, first, first_log)
            time.sleep(1)  # both threads reach their first write and wait on the test's locks
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            if connection.vendor == "postgresql":
                # The dead worker's statements still wait on the test's locks in their server processes, and
                # PostgreSQL notices a lost client only when it next talks to it: released now, the claim would
                # run and commit after its worker's death. A machine that dies takes its connections with it.
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
                    )

        second = start_worker(env, second_log, "default", *POOL)

        def both_done() -> bool:
            clip.refresh_from_db()
            release.refresh_from_db()
            return clip.analysed_at is not None and release.status != ReleaseStatus.BUILDING

        wait_until(both_done, 180, second, second_log)
    finally:
        stop_workers(first, second)

    first_output, second_output = first_log.read_text(), second_log.read_text()
    assert "succeeded" not in first_output  # the kill came before either task finished
    assert second_output.count("contributors.tasks.clip_analyse[") == 2, second_output[-3000:]  # received, succeeded
    assert second_output.count("benchmark.tasks.release_build[") == 2, second_output[-3000:]
    assert clip.analysis_attempts == 1 and 0.2 < clip.speech_ratio <= 1.0 and clip.snr_db > 10
    assert release.status == ReleaseStatus.READY, release.error
    if broker == "redis":
        # Redis hands a message out again once its visibility timeout passes, even while a worker still runs it:
        # with the test's 2 s, a redelivered build that took longer on a loaded machine left a copy queued. Every
        # such copy is of work now finished, which the tasks' row guards make a no-op when it comes.
        # The ready release also enqueues the leaderboard's re-scoring on it (nothing to re-score here), which the
        # second worker may not have taken before it was stopped.
        done = {
            ("contributors.tasks.clip_analyse", (clip.pk,)),
            ("benchmark.tasks.release_build", (release.pk,)),
            ("benchmark.tasks.submissions_reevaluate", (release.pk,)),
        }
        assert set(redis_copies(broker_url)) <= done
    else:
        assert messages_left(broker_url) == 0  # acknowledged: no third delivery is coming


def test_a_killed_release_build_comes_back_by_the_reaper_not_the_visibility_timeout(tmp_path, settings, monkeypatch):
    """On Redis a dead worker's message comes back only after the visibility timeout (12 h, as deployed): the build
    it was doing is re-queued by the reaper once its heartbeat goes stale, and a new worker builds it, once."""
    from benchmark import tasks
    from benchmark.releases.services import releases_reap

    settings.RELEASE_HEARTBEAT_STALE_SECONDS = 2  # the reaper runs here, in the test's process
    broker_url, transport_options = broker_for("redis", tmp_path)
    make_corpus(speakers=6, clips_each=1)
    release = release_create(version="v1")

    def send(release_id: int) -> None:
        # Not the current app: the patched task below belongs to the current one, which the reaper's call resolves.
        with Connection(broker_url, transport_options=transport_options) as conn:
            Celery(set_as_current=False).send_task(
                "benchmark.tasks.release_build", args=[release_id], queue="default", connection=conn
            )

    monkeypatch.setattr(tasks.release_build, "delay", send)  # the reaper's message goes to the real broker
    env = worker_env(broker_url, tmp_path, OMP_NUM_THREADS="1", RELEASE_HEARTBEAT_SECONDS="1")
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start_worker(env, first_log, "default", *POOL)
    second = None
    try:
        send(release.pk)

        def beating() -> bool:
            release.refresh_from_db()
            return release.heartbeat_at is not None and release.heartbeat_at > release.started_at

        wait_until(beating, 120, first, first_log)  # claimed, and its heartbeat thread beats
        with transaction.atomic():
            # A write on the row: the build can neither finish nor beat again before the kill.
            Release.objects.filter(pk=release.pk).update(error="")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            if connection.vendor == "postgresql":  # as in the test above: a dead machine's statements die with it
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
                    )
        release.refresh_from_db()
        assert (release.status, release.attempts) == (ReleaseStatus.BUILDING, 1)

        time.sleep(max(0.0, 2.5 - (time.time() - release.heartbeat_at.timestamp())))  # the heartbeat goes stale
        assert releases_reap() == {"requeued": 1, "failed": 0}
        second = start_worker(env, second_log, "default", *POOL)

        def built() -> bool:
            release.refresh_from_db()
            return release.status != ReleaseStatus.BUILDING

        wait_until(built, 180, second, second_log)
    finally:
        stop_workers(first, second)

    assert release.status == ReleaseStatus.READY, release.error
    assert (release.attempts, release.claims) == (2, 3)  # the dead claim, the reaper's fence, the new claim
    second_output = second_log.read_text()
    assert second_output.count("benchmark.tasks.release_build[") == 2, second_output[-3000:]  # received, succeeded
    # What Redis still holds: the dead worker's message (handed out again in 12 h, to a no-op) and never a second
    # copy of the build. The ready release also enqueues its leaderboard re-scoring, which the second worker may not
    # have taken before it was stopped (seen once in a clean-clone CI run).
    left = redis_copies(broker_url)
    assert left.count(("benchmark.tasks.release_build", (release.pk,))) == 1, left
    assert set(left) <= {
        ("benchmark.tasks.release_build", (release.pk,)),
        ("benchmark.tasks.submissions_reevaluate", (release.pk,)),
    }, left
    assert not list((Path(settings.MEDIA_ROOT) / "tmp").glob("release-*"))  # no attempt's staging left behind


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
