"""The validation path's statements: a token request loads the caller's contributor with the token, so
``validation/next`` and a vote do not look the profile up a second time."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.contributors.test_votes import record
from tests.factories import ContributorFactory, FounderFactory

pytestmark = pytest.mark.django_db


def _profile_lookups(queries: list[dict]) -> list[str]:
    """Statements that read contributors_contributor by user id on their own (not joined to the token)."""
    return [
        q["sql"]
        for q in queries
        if 'FROM "contributors_contributor"' in q["sql"] and '"contributors_contributor"."user_id" =' in q["sql"]
    ]


def test_a_token_request_loads_the_contributor_with_the_token():
    founder = FounderFactory()
    record(founder, 2)
    record(ContributorFactory(), 2)
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=founder.user).key}")

    with CaptureQueriesContext(connection) as offered:
        offer = client.get("/api/v1/validation/next").json()
    assert offer["clip"] is not None
    token_query = next(q["sql"] for q in offered.captured_queries if "authtoken_token" in q["sql"])
    assert 'JOIN "contributors_contributor"' in token_query
    assert _profile_lookups(offered.captured_queries) == []

    with CaptureQueriesContext(connection) as voted:
        response = client.post(f"/api/v1/clips/{offer['clip']['id']}/votes", {"verdict": "valid"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["next"]["clip"] is not None
    assert _profile_lookups(voted.captured_queries) == []


def test_a_token_of_a_user_without_a_profile_still_gets_one():
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_user("operator", password="x" * 12, is_staff=True)
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")

    response = client.get("/api/v1/validation/next")

    assert response.status_code == 403 and response.json()["code"] == "not_trustee"
    assert staff.__class__.objects.get(pk=staff.pk).contributor.is_trustee is False


def test_the_answers_written_out_equal_the_serializers():
    """offer_json and vote_json replace the serializers on the validation path; the serializers stay the schema's,
    and every field must come out the same: with a next clip, at the end of the quota and with no clip left."""
    from contributors.apis import ValidationNextApi, VoteCreateApi, offer_json, vote_json
    from contributors.services.assignments import validation_assign
    from contributors.services.votes import vote_cast

    founder = FounderFactory(vote_allowance=0)
    record(founder, 1)  # a quota of 13
    record(ContributorFactory(), 2)
    offer = validation_assign(trustee=founder)
    assert offer.clip is not None and offer.assignment is not None
    assert offer_json(offer) == ValidationNextApi.ValidationNextOutput(offer).data

    outcome = vote_cast(voter=founder, clip_id=offer.clip.pk, verdict="invalid", reason="noise")
    assert outcome.next is not None and outcome.next.clip is not None
    assert vote_json(outcome) == VoteCreateApi.VoteOutput(outcome).data

    last = vote_cast(voter=founder, clip_id=outcome.next.clip.pk, verdict="valid")
    assert last.next is not None and last.next.reason == "queue_empty"
    assert vote_json(last) == VoteCreateApi.VoteOutput(last).data
