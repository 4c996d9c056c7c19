"""Votes: one per clip and voter, never on one's own clip, also under concurrency (database constraint)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from contributors.models import Clip, Vote
from contributors.services.clips import clip_submit
from contributors.services.votes import vote_cast
from core.errors import ServiceError
from tests.factories import ContributorFactory, PromptFactory, speechlike, wav_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def clip() -> Clip:
    return clip_submit(
        contributor=ContributorFactory(), prompt_id=PromptFactory().pk, data=wav_bytes(speechlike())
    ).clip


def test_a_vote_is_recorded(clip):
    vote = vote_cast(voter=ContributorFactory(), clip_id=clip.pk, verdict="valid")

    assert vote.clip == clip and vote.verdict == "valid"


def test_nobody_votes_on_their_own_clip(clip):
    with pytest.raises(ServiceError) as exc:
        vote_cast(voter=clip.contributor, clip_id=clip.pk, verdict="valid")

    assert (exc.value.code, exc.value.status_code) == ("vote_own_clip", 403)
    assert not Vote.objects.exists()


def test_a_second_vote_is_a_409(clip):
    voter = ContributorFactory()
    vote_cast(voter=voter, clip_id=clip.pk, verdict="valid")

    with pytest.raises(ServiceError) as exc:
        vote_cast(voter=voter, clip_id=clip.pk, verdict="invalid")

    assert (exc.value.code, exc.value.status_code) == ("vote_duplicate", 409)
    assert Vote.objects.get().verdict == "valid"


def test_the_database_refuses_a_second_vote_even_past_the_service(clip):
    voter = ContributorFactory()
    Vote.objects.create(clip=clip, voter=voter, verdict="valid")

    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(clip=clip, voter=voter, verdict="valid")


@pytest.mark.parametrize(
    ("clip_id", "verdict", "code"), [(999_999, "valid", "clip_unknown"), ("x", "valid", "clip_unknown")]
)
def test_unknown_clips_are_refused(clip_id, verdict, code):
    with pytest.raises(ServiceError) as exc:
        vote_cast(voter=ContributorFactory(), clip_id=clip_id, verdict=verdict)
    assert exc.value.code == code


def test_a_malformed_verdict_is_refused(clip):
    with pytest.raises(ServiceError) as exc:
        vote_cast(voter=ContributorFactory(), clip_id=clip.pk, verdict="maybe")
    assert exc.value.code == "verdict_invalid"
