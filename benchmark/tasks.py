"""Celery tasks of the benchmark app: thin wrappers that take ids and call services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="benchmark.tasks.release_build", acks_late=True)
def release_build(release_id: int) -> str | None:
    """Build a release; guarded by the row's status and fenced claim, so a redelivery is a no-op."""
    from benchmark.releases.services import release_build as build

    release = build(release_id=release_id)
    return None if release is None else release.status


@shared_task(name="benchmark.tasks.releases_reap")
def releases_reap() -> dict[str, int]:
    """Periodic: re-queue or fail release builds whose worker went silent."""
    from benchmark.releases.services import releases_reap as reap

    return reap()


BUSY_RETRY_SECONDS = 30


@shared_task(name="benchmark.tasks.submission_evaluate", acks_late=True)
def submission_evaluate(submission_id: int, release_id: int | None = None) -> str | None:
    """Evaluate a submission in the sandbox (queue ``eval``); a redelivery on a finished submission is a no-op.
    While the same account has another evaluation running, the task is sent again in 30 s."""
    from benchmark.leaderboard.services import EvaluationBusy
    from benchmark.leaderboard.services import submission_evaluate as evaluate

    try:
        submission = evaluate(submission_id=submission_id, release_id=release_id)
    except EvaluationBusy:
        submission_evaluate.apply_async((submission_id, release_id), countdown=BUSY_RETRY_SECONDS)
        return "waiting"
    return None if submission is None else submission.status


@shared_task(name="benchmark.tasks.submissions_reap")
def submissions_reap() -> dict[str, int]:
    """Periodic: re-queue or fail submissions whose worker went silent; remove dead workers' temp folders."""
    from benchmark.leaderboard.services import submissions_reap as reap

    return reap()


@shared_task(name="benchmark.tasks.submissions_reevaluate", acks_late=True)
def submissions_reevaluate(release_id: int) -> int:
    """Enqueue the evaluation of every succeeded submission on a release that has just become ready."""
    from benchmark.leaderboard.services import submissions_reevaluate as reevaluate

    return reevaluate(release_id=release_id)
