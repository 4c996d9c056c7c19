"""DRF throttles that count atomically on shared storage (core.ratelimit), and the one client address that the
throttles, the login lock-out (django-axes) and the pages' limits all key on."""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle, ScopedRateThrottle, SimpleRateThrottle

from core import ratelimit


def client_ip(request: HttpRequest | Request) -> str:
    """The client's address as DRF reads it: REMOTE_ADDR, or the ``NUM_PROXIES``-th address from the right of
    X-Forwarded-For behind that many trusted proxies (settings.TRUSTED_PROXIES). Never a header the client chose
    unchecked: with no trusted proxy an X-Forwarded-For is ignored, so it cannot buy a fresh budget per request.
    Also django-axes' AXES_CLIENT_IP_CALLABLE, so that lock-outs and throttles agree on who the client is."""
    # get_ident reads request.META alone, which a Django HttpRequest has too; the stubs ask for DRF's Request.
    return BaseThrottle().get_ident(request)  # type: ignore[arg-type]


class AtomicRateThrottle(SimpleRateThrottle):
    """SimpleRateThrottle's rates and keys, counted by ``core.ratelimit.hit``: one atomic step per request, so
    concurrent requests never exceed the limit, and every process counts in the same place."""

    retry_after_s: int | None = None
    # Set by SimpleRateThrottle.__init__ (parse_rate), ints whenever a rate is set; djangorestframework-stubs omit them.
    num_requests: int
    duration: int

    def allow_request(self, request: Request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        outcome = ratelimit.hit(self.key, window_s=self.duration, now=self.timer())
        self.retry_after_s = outcome.retry_after_s
        return outcome.count <= self.num_requests

    def wait(self) -> float | None:
        return self.retry_after_s


class ScopedThrottle(ScopedRateThrottle, AtomicRateThrottle):
    """DRF's ScopedRateThrottle (``throttle_scope`` on the view; the user, else the IP) counted atomically."""


class SignupThrottle(AtomicRateThrottle):
    """Accounts opened per client address, on the API and the page alike (one budget for both): a logged-in
    caller or a token does not buy a separate budget, so it is keyed by address only."""

    scope = "signup"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request)}


def signup_wait(request: HttpRequest) -> int | None:
    """Count one sign-up attempt from this address for a page; None when allowed, else seconds to wait."""
    throttle = SignupThrottle()
    # SignupThrottle keys by client_ip alone, which takes a page's HttpRequest as well as DRF's Request.
    return None if throttle.allow_request(request, None) else throttle.retry_after_s  # type: ignore[arg-type]
