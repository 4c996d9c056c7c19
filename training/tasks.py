"""Celery tasks of the training app (routed to the gpu queue): thin wrappers that take ids and call services."""

from __future__ import annotations

from celery import shared_task

from training.conf import training_settings


@shared_task(name="training.tasks.run_train", bind=True, acks_late=True, max_retries=None)
def run_train(self, run_id: int) -> str:
    """Train run ``run_id``; a redelivery finds the row finished (no-op) or resumes it from its checkpoint.

    When a live worker still holds the run (a duplicate delivery), try again once its heartbeat could have
    gone stale: either that worker finishes it, or this delivery takes over a dead worker's run. A worker whose
    run was taken over while it ran (it had looked dead) returns ``superseded``: it stopped, and the row is the
    other worker's.
    """
    from training.services.execution import Outcome, run_execute

    outcome = run_execute(run_id=run_id)
    if outcome == Outcome.BUSY:
        raise self.retry(countdown=training_settings().heartbeat_stale_s)
    return outcome


@shared_task(name="training.tasks.runs_reap")
def runs_reap() -> dict[str, int]:
    """Periodic: runs whose worker went silent are queued again, or failed after too many losses."""
    from training.services.recovery import runs_reap as reap

    return reap()
