"""The lean dispatch of ``validation/next`` and votes (core/lean.py) against DRF's: the same requests on the same
database get the same status, headers and bytes, refusals included, and what the lean path cannot read exactly
goes to DRF."""

from __future__ import annotations

import json
import re

import pytest
from django.db import transaction
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.response import Response

from core.throttling import ScopedThrottle
from tests.contributors.test_lean_reads import _clip
from tests.factories import ContributorFactory, FounderFactory

pytestmark = pytest.mark.django_db

_HEADERS = ("Content-Type", "Allow", "Vary", "Retry-After", "WWW-Authenticate")
# The assignment's id and expiry: a new row and a new instant on each of the two runs.
_ASSIGNMENT = re.compile(rb'"id":\d+,"expires_at":"[^"]+"')


def _answer(response) -> tuple:
    body = _ASSIGNMENT.sub(b'"id":0,"expires_at":""', response.content)
    return response.status_code, {name: response.get(name) for name in _HEADERS}, body


def _both_ways(settings, send) -> tuple[tuple, bool]:
    """``send()`` on the same database through the lean dispatch and through DRF's (each rolled back); their
    answers, which must be equal, and whether the lean one answered itself (a success DRF did not render)."""
    answers, responses = [], []
    for lean in (True, False):
        settings.API_LEAN_DISPATCH = lean
        sid = transaction.savepoint()
        response = send()
        transaction.savepoint_rollback(sid)
        answers.append(_answer(response))
        responses.append(response)
    assert answers[0] == answers[1]
    assert isinstance(responses[1], Response)  # DRF's own answer
    return answers[0], not isinstance(responses[0], Response)


def test_the_lean_dispatch_answers_as_drf_does(settings, monkeypatch):
    founder = FounderFactory(vote_allowance=2)
    author = ContributorFactory()
    first, second = _clip(author), _clip(author)
    token = Token.objects.create(user=founder.user).key
    stranger = Token.objects.create(user=author.user).key  # not a trustee
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/validation/next").json()["clip"]["id"] in (first.pk, second.pk)
    assigned = next(c for c in (first, second) if c.assignments.filter(outcome="open").exists())
    votes = f"/api/v1/clips/{assigned.pk}/votes"

    def vote(body, *, content_type="application/json", **headers):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return lambda: client.post(votes, data, content_type=content_type, **headers)

    lean_answers = {
        "next": lambda: client.get("/api/v1/validation/next"),
        "next, JSON asked for": lambda: client.get("/api/v1/validation/next", HTTP_ACCEPT="application/json"),
        "next, not a trustee": lambda: Client().get("/api/v1/validation/next", HTTP_AUTHORIZATION=f"Token {stranger}"),
        "valid": vote({"verdict": "valid"}),
        "invalid, with its reason": vote({"verdict": "invalid", "reason": "noise"}, HTTP_ACCEPT="*/*"),
        "invalid, no reason": vote({"verdict": "invalid"}),
        "valid, with a reason": vote({"verdict": "valid", "reason": "noise"}),
        "an unknown reason": vote({"verdict": "invalid", "reason": "loud"}),
        "an unknown verdict": vote({"verdict": "maybe", "reason": "loud"}),
        "no verdict": vote({}),
        "a blank verdict": vote({"verdict": ""}),
        "other keys": vote({"verdict": "valid", "reason": "", "extra": [1]}),
        "an unknown clip": lambda: client.post("/api/v1/clips/999999/votes", {"verdict": "valid"}, "application/json"),
        "not an id": lambda: client.post("/api/v1/clips/x1/votes", {"verdict": "valid"}, "application/json"),
    }
    drf_answers = {
        "a verdict that is not a string": vote({"verdict": ["valid"]}),
        "a null reason": vote({"verdict": "invalid", "reason": None}),
        "a list": vote([{"verdict": "valid"}]),
        "malformed JSON": vote('{"verdict": '),
        "NaN": vote('{"verdict": "valid", "score": NaN}'),
        "a form": vote("verdict=valid", content_type="application/x-www-form-urlencoded"),
        "HTML asked for": vote({"verdict": "valid"}, HTTP_ACCEPT="text/html"),
        "?format=": lambda: client.get("/api/v1/validation/next?format=json"),
        "a wrong token": lambda: Client().get("/api/v1/validation/next", HTTP_AUTHORIZATION="Token nope"),
        "a token in three parts": lambda: Client().get("/api/v1/validation/next", HTTP_AUTHORIZATION="Token a b"),
        "no credentials": lambda: Client().post(votes, {"verdict": "valid"}, "application/json"),
        "another method": lambda: client.put(votes, {"verdict": "valid"}, "application/json"),
    }
    seen = {}
    for name, send in {**lean_answers, **drf_answers}.items():
        (status, _, body), answered_lean = _both_ways(settings, send)
        seen[name] = status, json.loads(body).get("code") if body else None
        if status < 300:
            assert answered_lean == (name in lean_answers), name

    assert seen["valid"] == (201, None) and seen["invalid, with its reason"] == (201, None)
    assert seen["next"] == (200, None) and seen["next, not a trustee"] == (403, "not_trustee")
    assert seen["invalid, no reason"] == seen["an unknown reason"] == (400, "reason_invalid")
    assert seen["no verdict"] == seen["an unknown verdict"] == (400, "verdict_invalid")
    assert seen["an unknown clip"] == seen["not an id"] == (404, "clip_unknown")
    assert seen["a wrong token"][0] == seen["no credentials"][0] == 401
    assert seen["HTML asked for"][0] == 406 and seen["malformed JSON"] == (400, "parse_error")

    # Throttled: the same counter, the same 429 with its Retry-After. The throttle's clock is held still: the two
    # answers came a few ms apart, and across a second's boundary their Retry-After differed by one (CI, session 14).
    monkeypatch.setitem(ScopedThrottle.THROTTLE_RATES, "votes", "1/min")
    monkeypatch.setattr(ScopedThrottle, "timer", staticmethod(lambda: 1_800_000_000.5))
    client.post(votes, {"verdict": "maybe"}, "application/json")  # spends the minute's one request
    (status, headers, body), _ = _both_ways(settings, vote({"verdict": "valid"}))
    assert status == 429 and headers["Retry-After"] and json.loads(body)["code"] == "throttled"
