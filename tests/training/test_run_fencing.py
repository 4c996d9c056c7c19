"""Issue #14, fenced workers: two workers on one run leave one result and one checkpoint history (the superseded
one's writes are refused and it stops), and the heartbeat thread keeps a run that reports no progress fresh."""

from __future__ import annotations

import fcntl
import threading
import time
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.forms.models import model_to_dict
from django.utils import timezone

from benchmark.models import Submission
from tests.benchmark.conftest import build, make_corpus
from training.models import TrainingRun, TrainingRunStatus
from training.services import execution, files
from training.services.runs import run_cancel, run_create

pytestmark = pytest.mark.usefixtures("run_settings")


def stored_files(prefix: str) -> list[str]:
    folders, names = default_storage.listdir(prefix)
    return sorted([f"{prefix}/{n}" for n in names] + [f for d in folders for f in stored_files(f"{prefix}/{d}")])


@pytest.mark.django_db(transaction=True)  # the heartbeat thread and the second worker see only committed rows
def test_a_run_has_one_live_worker_and_its_heartbeat_outlives_silent_stages(settings, monkeypatch, caplog):
    """One release (the smallest the tiny config trains on: six speakers, a clip each) for two points: two workers
    on one run leave one result and one checkpoint history; a run waiting on a file lock stays fresh."""
    make_corpus(speakers=6, clips_each=1)
    build("v1")
    # Batches of 8: a few progress reports per epoch, so that worker 1 writes between checkpoints.
    run = run_create(release="v1", recipe="teacher-dnn", overrides={"train.batch_size": 8}, enqueue=False)
    two_workers_leave_one_result(run, settings, monkeypatch, caplog)
    settings.TRAINING_HEARTBEAT_STALE_SECONDS = 1  # a beat every 0.1 s
    a_run_waiting_on_a_lock_stays_fresh(run_create(release="v1", recipe="teacher-dnn", enqueue=False))


def two_workers_leave_one_result(run: TrainingRun, settings, monkeypatch, caplog) -> None:
    """Worker 1 trains an epoch, then pauses (a stopped process, a lost network) past the stale limit: worker 2
    takes the run over and resumes from worker 1's checkpoint. Worker 1 wakes up while worker 2 trains: its next
    write is refused and it stops, leaving the row and the checkpoint worker 2 resumed from as they were."""
    settings.TRAINING_HEARTBEAT_STALE_SECONDS = 3600  # no beat in this part: worker 1's silence is staged
    train = execution.pipeline.train
    paused, resume = threading.Event(), threading.Event()
    outcomes: dict[int, str] = {}
    while_worker_2_holds: dict[str, object] = {}

    def train_as_staged(config, run_dir, stop_after=None, callback=None):
        """The training loop each worker runs, its progress callback (the worker's reporter) called as usual."""
        if threading.current_thread() is worker_1:

            def report_then_pause_after_an_epoch(event):
                callback(event)  # the epoch's checkpoint and progress are stored, then the worker falls silent
                if event["event"] == "epoch" and event["stage"] != "aligner":
                    paused.set()
                    assert resume.wait(300)

            return train(config, run_dir, stop_after, report_then_pause_after_an_epoch)
        # Worker 2 starts training, resumed from worker 1's checkpoint, nothing stored yet: worker 1 wakes up.
        before = model_to_dict(TrainingRun.objects.get(pk=run.pk))
        resume.set()
        worker_1.join(300)
        while_worker_2_holds["rows"] = (before, model_to_dict(TrainingRun.objects.get(pk=run.pk)))
        while_worker_2_holds["files"] = (before["checkpoint"], stored_files(run.storage_prefix))
        return train(config, run_dir, stop_after, callback)

    def worker() -> None:
        try:
            outcomes[1] = execution.run_execute(run_id=run.pk)
        finally:
            connection.close()

    worker_1 = threading.Thread(target=worker)
    with monkeypatch.context() as patch:
        patch.setattr(execution.pipeline, "train", train_as_staged)
        worker_1.start()
        try:
            assert paused.wait(300)
            TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(days=1))
            outcomes[2] = execution.run_execute(run_id=run.pk)
        finally:
            resume.set()
            worker_1.join(300)

    assert outcomes == {1: execution.Outcome.SUPERSEDED, 2: TrainingRunStatus.SUCCEEDED}
    # Worker 1 trained on while worker 2 held the run, and changed nothing: not a progress report, not a heartbeat,
    # not a log line; and the checkpoint the row named (which a third worker would resume from) stayed.
    before, after = while_worker_2_holds["rows"]
    assert after == before
    named, files_then = while_worker_2_holds["files"]
    assert files_then == [named] == [f"{run.storage_prefix}/attempt-1/checkpoint-1.pt"]
    run.refresh_from_db()
    assert run.status == TrainingRunStatus.SUCCEEDED and run.attempts == 2
    assert [r["epoch"] for r in run.history] == [1, 2]
    assert run.log.count("epoch 1/2") == run.log.count("epoch 2/2") == 1
    # One checkpoint history in storage: worker 2's files, under its attempt (worker 1's checkpoint went once
    # worker 2 had stored its own).
    attempt = f"{run.storage_prefix}/attempt-2"
    names = ("checkpoint-2.pt", "config.json", "hmm.pt", "metrics.json", "model.onnx")
    assert stored_files(run.storage_prefix) == [f"{attempt}/{n}" for n in names]
    assert (run.checkpoint, run.onnx, run.hmm) == tuple(
        f"{attempt}/{n}" for n in ("checkpoint-2.pt", "model.onnx", "hmm.pt")
    )
    assert Submission.objects.filter(is_baseline=True).count() == 1
    # Worker 1 said why it stopped, once, without a traceback.
    stops = [r for r in caplog.records if "attempt 1 stops" in r.getMessage()]
    assert len(stops) == 1 and stops[0].exc_info is None


def a_run_waiting_on_a_lock_stays_fresh(run: TrainingRun) -> None:
    """Waiting on the feature store's file lock reports no progress; the run stays fresh far past the stale
    limit, so a redelivery leaves it alone, and its worker is still the one that answers a cancel."""
    outcomes: list[str] = []

    def worker() -> None:
        try:
            outcomes.append(execution.run_execute(run_id=run.pk))
        finally:
            connection.close()

    lock = files.release_work_dir(run.release) / ".lock"
    thread = threading.Thread(target=worker)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another run is building the release's features
        try:
            thread.start()
            deadline = time.monotonic() + 60
            while TrainingRun.objects.get(pk=run.pk).progress.get("stage") != "train" and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(2.5)  # more than twice the stale limit, waiting on the lock
            run.refresh_from_db()
            assert run.progress["stage"] == "train" and timezone.now() - run.heartbeat_at < timedelta(seconds=1)
            assert execution.run_execute(run_id=run.pk) == execution.Outcome.BUSY
        finally:
            run_cancel(run_id=run.pk)  # the worker stops at its first report once it has the lock
            fcntl.flock(held, fcntl.LOCK_UN)
    thread.join(timeout=120)

    assert outcomes == [TrainingRunStatus.CANCELLED]
    run.refresh_from_db()
    assert run.status == TrainingRunStatus.CANCELLED and run.attempts == 1
