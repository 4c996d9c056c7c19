"""Release files are throttled by the bytes they send, not by how many there are.

A split fetched file by file is thousands of small requests and a tar is one large one; a byte budget treats them
alike. Each client (user, else IP, as DRF's throttles key them) has a bucket of ``THROTTLE_DOWNLOAD_BYTES`` (e.g.
``"1GB/min"``) that refills continuously. A request is let through while the bucket is not overdrawn and is then
charged the bytes it will send, so a file larger than the whole budget is still served; the next request waits
out the debt, told so by ``429`` with ``Retry-After``.
"""

from __future__ import annotations

import math
import re
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RATE = re.compile(r"^\s*(\d+)\s*([KMG]?)B?\s*/\s*([smhd])[a-z]*\s*$", re.IGNORECASE)


def byte_rate_parse(rate: str) -> tuple[int, int] | None:
    """``"1GB/min"`` → (10**9, 60); an empty rate is no budget (None)."""
    if not rate.strip():
        return None
    match = RATE.match(rate)
    if match is None:
        raise ValueError(f"A byte rate looks like '1GB/min' or '500MB/s', not {rate!r}.")
    amount, unit, period = match.groups()
    return int(amount) * UNITS[unit.upper()], PERIODS[period.lower()]


class ReleaseBytesThrottle(BaseThrottle):
    """The byte budget of release downloads. ``allow_request`` refuses an overdrawn client before any work;
    the view calls ``charge`` with the bytes of the response it is about to stream."""

    cache_format = "throttle_release_bytes_%s"

    def __init__(self) -> None:
        self.rate = byte_rate_parse(settings.THROTTLE_DOWNLOAD_BYTES)
        self.wait_s = 0.0

    def _bucket(self, request: Request, budget: int, period: int) -> tuple[str, float, float]:
        """(cache key, bytes left now, now); a client never seen, or idle long enough, has a full bucket."""
        key = self.cache_format % self.get_ident(request)
        now = time.time()
        left, at = cache.get(key, (float(budget), now))
        left = min(float(budget), left + (now - at) * budget / period)
        return key, left, now

    def allow_request(self, request: Request, view) -> bool:
        if self.rate is None:
            return True
        budget, period = self.rate
        _, left, _ = self._bucket(request, budget, period)
        if left >= 0:
            return True
        self.wait_s = -left * period / budget
        return False

    def wait(self) -> float | None:
        return math.ceil(self.wait_s) if self.wait_s else None

    def charge(self, request: Request, nbytes: int) -> None:
        if self.rate is None or nbytes <= 0:
            return
        budget, period = self.rate
        key, left, now = self._bucket(request, budget, period)
        # Kept as long as a full refill takes: after that the bucket is full again and the entry is not needed.
        cache.set(key, (left - nbytes, now), timeout=period + math.ceil(nbytes * period / budget))
