"""Leased slots that every process shares: at most N holders of a named resource at once, across all web processes.

Large uploads take one each (core.middleware): receiving and checking a model of hundreds of megabytes holds a web
worker, temporary disk and memory for as long, so the number in flight is bounded for the whole deployment, not
per process.

A slot is a key with an owner token and an expiry (the lease), on the storage the rate limits count on
(core.ratelimit): with Redis as the cache ``SET key token NX EX lease``, else one ``INSERT ... ON CONFLICT DO
UPDATE ... WHERE expired ... RETURNING`` on ``core_rate_counter``, so that taking a free slot (or one whose lease
ran out) is one atomic step either way. The lease is what frees the slot of a process that was killed while
holding it; releasing deletes the key only while it still holds the holder's token, so a holder whose lease had
run out cannot free a slot someone else has taken since.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection

from core.models import RateCounter

# KEYS[1]: the slot; ARGV[1]: the holder's token. Deletes the slot only while that holder has it.
_REDIS_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# A free slot (no row) is inserted; a row whose lease ended is taken over; a live one is left alone, and RETURNING
# then yields no row. SQLite (3.35+) and PostgreSQL run it as written.
_TAKE = (
    "INSERT INTO {table} ({key}, {count}, {ends}) VALUES (%s, %s, %s) "
    "ON CONFLICT ({key}) DO UPDATE SET {count} = excluded.{count}, {ends} = excluded.{ends} "
    "WHERE {table}.{ends} < %s "
    "RETURNING {count}"
)


@dataclass(frozen=True)
class Slot:
    key: str
    token: int


def slot_acquire(name: str, *, slots: int, lease_s: int, now: float | None = None) -> Slot | None:
    """One of ``slots`` slots of ``name`` for ``lease_s`` seconds, or None when all are held."""
    now = time.time() if now is None else now
    token = secrets.randbelow(2**31 - 1) + 1  # fits the counter column on every database
    for index in range(max(0, slots)):
        key = f"slot:{name}:{index}"
        if _take(key, token, lease_s=max(1, int(lease_s)), now=now):
            return Slot(key=key, token=token)
    return None


def slot_release(slot: Slot) -> None:
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        full_key = backend.make_and_validate_key(slot.key)
        backend._cache.get_client(full_key, write=True).eval(_REDIS_RELEASE, 1, full_key, slot.token)
        return
    RateCounter.objects.filter(key=slot.key, count=slot.token).delete()


def _take(key: str, token: int, *, lease_s: int, now: float) -> bool:
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        full_key = backend.make_and_validate_key(key)
        return bool(backend._cache.get_client(full_key, write=True).set(full_key, token, nx=True, ex=lease_s))
    quote = connection.ops.quote_name
    sql = _TAKE.format(
        table=quote(RateCounter._meta.db_table), key=quote("key"), count=quote("count"), ends=quote("window_ends")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, token, now + lease_s, now])
        return cursor.fetchone() is not None
