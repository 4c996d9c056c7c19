"""Celery tasks of the benchmark app: thin wrappers that take ids and call services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="benchmark.tasks.release_build", acks_late=True)
def release_build(release_id: int) -> str | None:
    """Build a release; guarded by the row's status and claim, so a redelivery is a no-op."""
    from benchmark.services.releases import release_build as build

    release = build(release_id=release_id)
    return None if release is None else release.status
