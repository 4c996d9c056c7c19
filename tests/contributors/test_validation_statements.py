"""The validation path's statements: a token request loads the caller's contributor with the token, so
``validation/next`` and a vote do not look the profile up a second time."""

from __future__ import annotations

import pytest
from django.core.management import call_command
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
    others = {clip.pk for clip in record(ContributorFactory(), 2)}  # the founder's own are never offered
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=founder.user).key}")

    with CaptureQueriesContext(connection) as offered:
        offer = client.get("/api/v1/validation/next").json()
    assert offer["clip"]["id"] in others
    token_query = next(q["sql"] for q in offered.captured_queries if "authtoken_token" in q["sql"])
    assert 'JOIN "contributors_contributor"' in token_query
    assert _profile_lookups(offered.captured_queries) == []

    with CaptureQueriesContext(connection) as voted:
        response = client.post(f"/api/v1/clips/{offer['clip']['id']}/votes", {"verdict": "valid"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["next"]["clip"]["id"] == (others - {offer["clip"]["id"]}).pop()
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
    others = {clip.pk for clip in record(ContributorFactory(), 2)}
    offer = validation_assign(trustee=founder)
    assert offer.clip.pk in others
    assert (offer.assignment.trustee_id, offer.assignment.clip_id) == (founder.pk, offer.clip.pk)
    assert offer_json(offer) == ValidationNextApi.ValidationNextOutput(offer).data

    outcome = vote_cast(voter=founder, clip_id=offer.clip.pk, verdict="invalid", reason="noise")
    assert outcome.next.clip.pk == (others - {offer.clip.pk}).pop()
    assert vote_json(outcome) == VoteCreateApi.VoteOutput(outcome).data

    last = vote_cast(voter=founder, clip_id=outcome.next.clip.pk, verdict="valid")
    assert (last.next.clip, last.next.reason) == (None, "queue_empty")
    assert vote_json(last) == VoteCreateApi.VoteOutput(last).data


@pytest.mark.parametrize("one_call", [True, False])
def test_the_vote_its_assignment_and_the_clips_counts_are_one_statement_that_counts_as_the_separate_ones(
    one_call, settings
):
    """On PostgreSQL the vote's insert, its assignment's close and the clip's counted votes are one statement: the
    vote function's call (contributors/sql_functions.py), or, statement by statement (``VOTE_ONE_CALL`` off), a
    data-modifying CTE whose snapshot cannot see its own insert. The counts stored must still be what
    counted_votes_sql reads afterwards (trustees' votes only, this one included), for a valid and for an invalid
    verdict."""
    from contributors.models import Vote
    from contributors.services.trust import counted_votes_sql
    from contributors.services.votes import vote_cast
    from contributors.sql_functions import lock_exact_function, lock_quota_function, vote_function
    from tests.factories import assign

    settings.VOTE_ONE_CALL = one_call
    founders = [FounderFactory() for _ in range(3)]
    for founder in founders:
        record(founder, 1)
    record(ContributorFactory(), 1)  # the next assignment's clip
    clip = record(ContributorFactory(), 1)[0]
    Vote.objects.create(clip=clip, voter=founders[0], verdict="invalid", reason="noise")
    Vote.objects.create(clip=clip, voter=ContributorFactory(is_trustee=False), verdict="valid")  # counts nowhere
    call_command("trust_recompute")  # a fixed point: the votes take the shared lock, as on a live database

    for voter, verdict, reason in ((founders[1], "valid", ""), (founders[2], "invalid", "noise")):
        assign(voter, clip)
        with CaptureQueriesContext(connection) as captured:
            outcome = vote_cast(voter=voter, clip_id=clip.pk, verdict=verdict, reason=reason)
        assert outcome.next is not None and outcome.next.clip is not None
        statement, params = counted_votes_sql()
        with connection.cursor() as cursor:
            cursor.execute(statement, [*params, clip.pk])
            valid, invalid = cursor.fetchone()
        clip.refresh_from_db()
        assert (clip.votes_valid_counted, clip.votes_counted) == (valid, valid + invalid)
        statements = [q["sql"] for q in captured.captured_queries]
        inserts = [sql for sql in statements if "INSERT INTO contributors_vote" in sql]
        calls = [sql for sql in statements if vote_function().name in sql]
        if connection.vendor != "postgresql":
            assert len(inserts) == 1 and calls == []
            continue
        if one_call:
            # Nothing the call does runs again on its own: the lock, the voter, the clip, the insert, the pick.
            assert len(calls) == 1 and inserts == []
            separate = (lock_exact_function().name, lock_quota_function().name, "FOR UPDATE OF c, a")
            assert not any(name in sql for sql in statements for name in separate)
            assert not any("queue_key >=" in sql for sql in statements)
        else:
            assert calls == [] and len(inserts) == 1
            assert "UPDATE contributors_validationassignment" in inserts[0] and "COUNT(" in inserts[0]
        # The next assignment's insert reads the clip it opens on, with its prompt: no statement of its own.
        prompt_reads = [sql for sql in statements if "JOIN contributors_prompt" in sql]
        assert len(prompt_reads) == 1 and "INSERT INTO contributors_validationassignment" in prompt_reads[0]
    assert (valid, invalid) == (1, 2)
