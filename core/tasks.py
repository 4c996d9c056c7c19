"""Celery tasks of the core app: thin wrappers over its services."""

from __future__ import annotations

from celery import shared_task

from core import ratelimit


@shared_task(name="core.tasks.rate_counters_sweep")
def rate_counters_sweep() -> int:
    return ratelimit.counters_sweep()
