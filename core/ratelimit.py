"""Atomic fixed-window counters that every process shares: the API's throttles and the pages' limits count here.

DRF's own throttles read a client's history, decide, then write it back: two requests at once both read 29 of 30
and both pass (the issue measured 42 accepted against a limit of 30 on Redis), and with a per-process cache each
gunicorn worker kept a budget of its own. Here counting a request and reading the count is one atomic step, on
storage every process sees:

- with Redis as the cache (``CACHE_URL=redis://...``), a Lua script increments the window's key and sets its
  expiry in one step (a bare INCR then EXPIRE could leave a key that never expires if the process died between);
- otherwise (the embedded SQLite default, or PostgreSQL without Redis), one ``INSERT ... ON CONFLICT DO UPDATE ...
  RETURNING`` on ``core_rate_counter``. Django's database cache would be shared too, but its ``incr`` is a get
  followed by a set, as racy as DRF's history.

Windows are aligned to the clock (a 60 s limit resets at every whole minute), so a client can send up to twice
the limit across a boundary: for login, sign-up and API ceilings that is an accepted price for one counter per
client and limit, where a sliding log would store one entry per request.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from redis.commands.core import Script

from core.models import RateCounter

_SAFE_KEY = re.compile(r"^[\w.:\-]{1,200}$")

# KEYS[1]: the window's key; ARGV[1]: its lifetime in seconds. Returns the count including this request.
_REDIS_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""

# One statement: a new client starts at 1, a client whose stored window has passed starts again at 1, any other
# adds 1; RETURNING reads the count this request made. Both SQLite (3.35+) and PostgreSQL run it as written.
_UPSERT = (
    "INSERT INTO {table} ({key}, {count}, {ends}) VALUES (%s, 1, %s) "
    "ON CONFLICT ({key}) DO UPDATE SET "
    "{count} = CASE WHEN {table}.{ends} = excluded.{ends} THEN {table}.{count} + 1 ELSE 1 END, "
    "{ends} = excluded.{ends} "
    "RETURNING {count}"
)


@dataclass(frozen=True)
class Hit:
    count: int  # requests in this window, this one included
    retry_after_s: int  # seconds until the window starts again


def hit(key: str, *, window_s: int, now: float | None = None) -> Hit:
    """Count one request against ``key`` in the current ``window_s``-second window."""
    now = time.time() if now is None else now
    window_s = max(1, int(window_s))
    ends = (math.floor(now / window_s) + 1) * window_s
    key = _storage_key(key)
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        count = _redis_hit(backend, f"{key}:{ends:.0f}", window_s)
    else:
        count = _database_hit(key, ends)
    return Hit(count=count, retry_after_s=max(1, math.ceil(ends - now)))


def _storage_key(key: str) -> str:
    """The key as given when it is short and plain, else its digest (an X-Forwarded-For value may be anything)."""
    if _SAFE_KEY.match(key):
        return f"rl:{key}"
    return "rl:sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _redis_hit(backend: RedisCache, key: str, window_s: int) -> int:
    full_key = backend.make_and_validate_key(key)
    # The key outlives its window by a second so that a request at the very end still finds it.
    # RedisCache._cache (the client wrapper Django keeps) is private: django-stubs do not declare it.
    return int(_redis_hit_script(backend._cache)(keys=[full_key], args=[window_s + 1]))  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=16)
def _redis_hit_script(cache_client: Any) -> Script:
    """The script, registered once per cache client: it runs by its digest (EVALSHA, loaded on first use), on a
    Redis client made once. Django's ``get_client`` makes a client object per call, which cost more CPU than
    the round trip (py-spy, benchmarks/vote_api.py). The write client is the same for every key."""
    return cache_client.get_client(write=True).register_script(_REDIS_HIT)


def _database_hit(key: str, ends: float) -> int:
    quote = connection.ops.quote_name
    sql = _UPSERT.format(
        table=quote(RateCounter._meta.db_table), key=quote("key"), count=quote("count"), ends=quote("window_ends")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, ends])
        return int(cursor.fetchone()[0])


def counters_sweep(*, now: float | None = None) -> int:
    """Delete the database's counters of windows that ended over an hour ago (the periodic task
    ``core.tasks.rate_counters_sweep``), so that the table holds about the clients of the last hour, not every
    address ever seen. Redis expires its keys itself."""
    now = time.time() if now is None else now
    deleted, _ = RateCounter.objects.filter(window_ends__lt=now - 3600).delete()
    return deleted
