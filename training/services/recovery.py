"""Runs whose worker died: found by their silent heartbeat and queued again, or failed after too many losses.

A run's worker beats from a background thread through every stage (``execution``), so a heartbeat older than
``TRAINING_HEARTBEAT_STALE_SECONDS`` means the worker is gone (killed, its machine lost). The embedded broker gives
a dead worker's message back within seconds, but Redis only after its visibility timeout, which must outlast the
longest run (12 hours): without this reaper a SIGKILLed run would sit "running" that long. Re-queueing sets the row
back to queued, so the silent worker's fenced writes (which hold only while the run is running under its attempt
number) change nothing if it ever comes back, and the next claim resumes from the last stored checkpoint.
"""

from __future__ import annotations

import logging
from datetime import datetime

from core.fencing import reap_silent
from training.conf import training_settings
from training.models import TrainingRun, TrainingRunStatus
from training.services.execution import append_log
from training.services.runs import enqueue_after_commit, students_fail

logger = logging.getLogger(__name__)


def runs_reap() -> dict[str, int]:
    """Periodic (beat): every running run whose heartbeat went stale is queued again while it has attempts left
    (``TRAINING_MAX_ATTEMPTS`` claims in all), else failed with ``worker_lost`` (its students with it). A row locked
    by a live worker's final write is skipped."""
    return reap_silent(
        TrainingRun.objects.filter(status=TrainingRunStatus.RUNNING),
        stale_after=training_settings().heartbeat_stale,
        max_attempts=training_settings().max_attempts,
        requeue=_requeue,
        fail=_fail,
    )


def _requeue(run: TrainingRun) -> None:
    last = run.heartbeat_at or run.started_at
    run.status, run.heartbeat_at = TrainingRunStatus.QUEUED, None
    append_log(run, f"worker {run.worker or '?'} went silent at {last}; queued again")
    run.save(update_fields=["status", "heartbeat_at", "log"])
    enqueue_after_commit(run.pk)
    logger.warning("training run %s: its worker %s went silent; queued again", run.pk, run.worker)


def _fail(run: TrainingRun, now: datetime) -> None:
    last = run.heartbeat_at or run.started_at
    run.status, run.finished_at = TrainingRunStatus.FAILED, now
    run.error_code = "worker_lost"
    run.error = f"The run's worker was lost on each of its {run.attempts} attempts (last heard from at {last})."
    append_log(run, "failed: worker_lost")
    run.save(update_fields=["status", "finished_at", "error_code", "error", "log"])
    students_fail(run=run)
