"""Rows the apps share: rate-limit counters."""

from __future__ import annotations

from django.db import models


class RateCounter(models.Model):
    """One client's requests in the current fixed window of one limit (core.ratelimit), when the cache is not
    Redis: every web process counts in the same row, and one upsert statement adds a request and reads the count,
    so two concurrent requests can never both see the last free place."""

    key = models.CharField(max_length=255, primary_key=True)
    count = models.PositiveIntegerField(default=0)
    window_ends = models.FloatField(db_index=True, help_text="Unix time at which the count starts again at 0.")

    class Meta:
        db_table = "core_rate_counter"

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
