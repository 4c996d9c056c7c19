"""Celery tasks of the contributors app: thin wrappers that take ids and call services."""

from __future__ import annotations

from celery import shared_task

from contributors.services import clips as clip_services


@shared_task(name="contributors.tasks.clip_analyse", acks_late=True)
def clip_analyse(clip_id: int) -> float | None:
    clip = clip_services.clip_analyse(clip_id=clip_id)
    return None if clip is None else clip.speech_ratio


@shared_task(name="contributors.tasks.storage_sweep_orphans")
def storage_sweep_orphans() -> int:
    return len(clip_services.storage_sweep_orphans())


@shared_task(name="contributors.tasks.clips_analyse_missing")
def clips_analyse_missing() -> int:
    return clip_services.clips_analyse_missing()


@shared_task(name="contributors.tasks.trust_recompute")
def trust_recompute() -> int:
    from contributors.services.trust import trust_recompute_all

    return trust_recompute_all(trigger="periodic").clips_changed
