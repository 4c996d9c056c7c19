"""Throttles count atomically on storage every process shares (core.ratelimit): concurrent requests never get
past the limit, on the database (the embedded default, and PostgreSQL without Redis) or on Redis; sign-ups are
limited per address on the API and the page together; a refused client gets in again once the window is over."""

from __future__ import annotations

import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from contributors.models import Contributor
from core import ratelimit
from core.models import RateCounter
from core.throttling import SignupThrottle
from tests.conftest import xdist_worker_index

THREADS = 24


def _concurrently(work, n: int = THREADS) -> list:
    """``work(i)`` in ``n`` threads released together; each closes its own database connection."""
    start = threading.Barrier(n)

    def run(i: int):
        start.wait()
        try:
            return work(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def _signup_body(i: int) -> dict:
    # Invalid on purpose (no consent, short password): the throttle counts attempts, and a refused body is cheap.
    return {"username": f"spammer{i}", "password": "x"}


@pytest.mark.django_db(transaction=True)
def test_concurrent_hits_each_get_their_own_count():
    counts = _concurrently(lambda i: ratelimit.hit("t:race", window_s=60, now=1_000_000.0).count)
    assert sorted(counts) == list(range(1, THREADS + 1))  # no two requests ever read the same count
    assert RateCounter.objects.get().count == THREADS


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_never_exceed_the_limit(monkeypatch):
    limit = THREADS // 2
    monkeypatch.setattr(SignupThrottle, "THROTTLE_RATES", {"signup": f"{limit}/hour"})
    codes = Counter(
        _concurrently(lambda i: APIClient().post("/api/v1/auth/signup", _signup_body(i), format="json").status_code)
    )
    assert codes[429] == THREADS - limit and sum(codes.values()) == THREADS


def _redis_url() -> str | None:
    redis = pytest.importorskip("redis")
    # Databases 1-4 for up to four pytest workers; the Celery tests' brokers count down from 14 (broker_for).
    url = f"redis://127.0.0.1:6379/{1 + xdist_worker_index() % 4}"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return None
    return url


@pytest.fixture
def redis_cache(settings):
    url = os.environ.get("TEST_REDIS_CACHE_URL") or _redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db(transaction=True)
def test_on_redis_concurrent_requests_never_exceed_the_limit(redis_cache, monkeypatch):
    limit = THREADS // 2
    monkeypatch.setattr(SignupThrottle, "THROTTLE_RATES", {"signup": f"{limit}/hour"})
    counts = _concurrently(lambda i: ratelimit.hit("t:redis", window_s=60, now=1_000_000.0).count)
    assert sorted(counts) == list(range(1, THREADS + 1))
    codes = Counter(
        _concurrently(lambda i: APIClient().post("/api/v1/auth/signup", _signup_body(i), format="json").status_code)
    )
    assert codes[429] == THREADS - limit
    assert not RateCounter.objects.exists()  # counted in Redis, not in the table


def test_a_window_resets_on_the_clock_and_a_long_key_is_digested(db):
    assert ratelimit.hit("t:w", window_s=60, now=120.0) == ratelimit.Hit(count=1, retry_after_s=60)
    assert ratelimit.hit("t:w", window_s=60, now=179.5) == ratelimit.Hit(count=2, retry_after_s=1)
    assert ratelimit.hit("t:w", window_s=60, now=180.0).count == 1  # the next minute starts again
    ratelimit.hit("t:" + "x" * 5000 + " \u2028", window_s=60, now=0.0)
    assert all(len(key) < 100 for key in RateCounter.objects.values_list("key", flat=True))


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    now = [1_000_020.0]
    monkeypatch.setattr(ScopedRateThrottle, "timer", staticmethod(lambda: now[0]))
    monkeypatch.setattr(SignupThrottle, "timer", staticmethod(lambda: now[0]))
    return now


@pytest.mark.django_db
def test_signups_per_address_are_limited_on_the_api_and_the_page_together_then_recover(clock, monkeypatch):
    monkeypatch.setattr(SignupThrottle, "THROTTLE_RATES", {"signup": "3/hour"})
    body = {"password": "a-long-enough-password", "cc0_consent": True}
    for i in range(2):
        created = APIClient().post("/api/v1/auth/signup", {**body, "username": f"ok{i}"}, format="json")
        assert created.status_code == 201
    page = Client().post("/signup/", {**body, "username": "ok2", "cc0_consent": "on"})
    assert page.status_code == 302  # the third, through the page

    refused = APIClient().post("/api/v1/auth/signup", {**body, "username": "spam"}, format="json")
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled" and refused.json()["message"]
    wait = int(refused["Retry-After"])
    assert 0 < wait <= 3600
    refused_page = Client().post("/signup/", {**body, "username": "spam", "cc0_consent": "on"})
    assert refused_page.status_code == 429 and int(refused_page["Retry-After"]) == wait
    assert "Too many sign-ups" in refused_page.content.decode()
    # A forged X-Forwarded-For is not a new client.
    forged = APIClient().post(
        "/api/v1/auth/signup", {**body, "username": "spam"}, format="json", HTTP_X_FORWARDED_FOR="192.0.2.99"
    )
    assert forged.status_code == 429
    # Another address has its own budget.
    other = APIClient().post(
        "/api/v1/auth/signup", {**body, "username": "other"}, format="json", REMOTE_ADDR="192.0.2.1"
    )
    assert other.status_code == 201
    assert not Contributor.objects.filter(user__username="spam").exists()

    clock[0] += wait  # the window is over
    again = APIClient().post("/api/v1/auth/signup", {**body, "username": "later"}, format="json")
    assert again.status_code == 201


@pytest.mark.django_db
def test_scoped_api_throttles_refuse_then_recover(clock, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "2/min"})
    codes = [
        APIClient().post("/api/v1/auth/token", {"username": "x", "password": "y"}, format="json").status_code
        for _ in range(3)
    ]
    assert codes == [400, 400, 429]
    clock[0] += 60
    assert APIClient().post("/api/v1/auth/token", {"username": "x", "password": "y"}, format="json").status_code == 400


def test_the_embedded_default_shares_its_cache_between_processes(settings):
    # Without CACHE_URL every process reads and writes the database's cache table, not a cache of its own.
    if not os.environ.get("CACHE_URL"):
        assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
