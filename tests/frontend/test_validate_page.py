"""The validate page through Django's test client: where the validator stands, before any clip is served,
and the reasons offered with "invalid"."""

from __future__ import annotations

import re

import pytest

from contributors.models import InvalidReason
from tests.factories import ContributorFactory, FounderFactory

pytestmark = pytest.mark.django_db


def page_for(client, contributor) -> str:
    client.force_login(contributor.user)
    response = client.get("/validate/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_trustee_sees_their_status_and_votes_left_before_a_clip_is_served(client):
    page = page_for(client, FounderFactory(vote_allowance=7))

    assert re.search(r"You are a founding trustee \(trust\s+1\.00\)", page)
    assert '<strong id="quota">7</strong>' in page
    assert 'data-state="loading"' in page and 'data-quota="7"' in page
    assert 'id="confirmation"' in page  # the last verdict's confirmation has its own line
    assert "validator.js" in page


def test_at_zero_votes_left_the_page_says_so_and_asks_for_no_clip(client):
    page = page_for(client, FounderFactory(vote_allowance=0))

    assert '<strong id="quota">0</strong>' in page
    assert 'data-state="quota"' in page  # validator.js loads no clip in this state
    assert "You have used the votes" in page


def test_invalid_offers_every_reason_as_a_button_without_inline_script(client):
    page = page_for(client, FounderFactory())

    reasons = re.findall(r'<button type="button" data-reason="(\w+)"><kbd>(\d)</kbd> ([^<]+)</button>', page)
    assert reasons == [(value, str(n), label) for n, (value, label) in enumerate(InvalidReason.choices, start=1)]
    assert '<fieldset id="invalid-reasons" class="reasons" hidden>' in page
    assert 'aria-controls="invalid-reasons"' in page
    assert not re.search(r"\son\w+=|<script(?![^>]*\bsrc=)|\sstyle=", page)  # the CSP allows none of these


def test_a_contributor_who_is_not_a_trustee_is_told_so_and_served_nothing(client):
    page = page_for(client, ContributorFactory(trust=0.3))

    assert "Validation is done by trustees" in page and "Your trust is 0.30" in page
    assert 'id="validator"' not in page and "validator.js" not in page
