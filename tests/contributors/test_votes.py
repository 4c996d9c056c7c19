"""Votes through the API: the rules, every refusal, quotas and concurrency."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction
from rest_framework.test import APIClient

from contributors.models import Clip, ClipStatus, Vote
from contributors.services.clips import clip_submit
from contributors.services.votes import vote_cast
from core.errors import ServiceError
from tests.factories import ContributorFactory, FounderFactory, PromptFactory, speechlike, wav_bytes

pytestmark = pytest.mark.django_db

_seed = iter(range(10_000, 1_000_000))


def record(contributor, n: int = 1) -> list[Clip]:
    return [
        clip_submit(
            contributor=contributor, prompt_id=PromptFactory().pk, data=wav_bytes(speechlike(seed=next(_seed)))
        ).clip
        for _ in range(n)
    ]


def client_for(contributor) -> APIClient:
    client = APIClient()
    client.force_authenticate(contributor.user)
    return client


@pytest.fixture
def founder():
    founder = FounderFactory()
    record(founder, 3)  # quota 3
    return founder


@pytest.fixture
def clip() -> Clip:
    return record(ContributorFactory())[0]


def vote(client: APIClient, clip_id, verdict="valid"):
    return client.post(f"/api/v1/clips/{clip_id}/votes", {"verdict": verdict}, format="json")


def test_a_trustee_votes_and_the_quota_goes_down(founder, clip):
    response = vote(client_for(founder), clip.pk)

    assert response.status_code == 201, response.json()
    assert response.json() == {"clip": clip.pk, "verdict": "valid", "clip_status": "pending", "quota_left": 2}
    clip.refresh_from_db()
    assert (clip.votes_counted, clip.votes_valid_counted, clip.score) == (1, 1, pytest.approx(0.2065, abs=1e-4))


def test_six_unanimous_trustee_votes_make_a_clip_valid_and_lift_its_author(clip):
    founders = [FounderFactory() for _ in range(6)]
    for f in founders:
        record(f)
    statuses = [vote(client_for(f), clip.pk).json()["clip_status"] for f in founders]

    assert statuses == ["pending"] * 5 + ["valid"]
    clip.refresh_from_db()
    assert clip.score == pytest.approx(0.6097, abs=1e-4)
    author = clip.contributor
    author.refresh_from_db()
    assert author.trust == 1.0 and author.is_trustee  # one clip, valid: trust 1 > 0.6


@pytest.mark.parametrize("verdict", ["maybe", "", "VALID", None])
def test_a_malformed_verdict_is_a_400(founder, clip, verdict):
    response = vote(client_for(founder), clip.pk, verdict)

    assert response.status_code == 400
    assert response.json()["code"] == "verdict_invalid"
    assert not Vote.objects.exists()


def test_voting_twice_is_a_409(founder, clip):
    vote(client_for(founder), clip.pk)
    response = vote(client_for(founder), clip.pk, "invalid")

    assert response.status_code == 409
    assert response.json()["code"] == "vote_duplicate"
    assert Vote.objects.get().verdict == "valid"


def test_voting_on_ones_own_clip_is_a_403(founder):
    own = Clip.objects.filter(contributor=founder).first()
    response = vote(client_for(founder), own.pk)

    assert response.status_code == 403
    assert response.json()["code"] == "vote_own_clip"


def test_a_non_trustee_cannot_vote(clip):
    voter = ContributorFactory()
    record(voter, 2)
    response = vote(client_for(voter), clip.pk)

    assert response.status_code == 403
    assert response.json()["code"] == "not_trustee"


def test_voting_past_the_quota_is_a_429_with_the_quota(founder):
    clips = record(ContributorFactory(), 4)
    codes = [vote(client_for(founder), c.pk).status_code for c in clips]
    last = vote(client_for(founder), clips[3].pk)

    assert codes == [201, 201, 201, 429]
    assert last.json()["code"] == "quota_exhausted"
    assert last.json()["quota_left"] == 0
    assert Vote.objects.count() == 3


@pytest.mark.parametrize("status", [ClipStatus.VALID, ClipStatus.DISCARDED, ClipStatus.INVALID])
def test_voting_on_a_decided_clip_is_a_409(founder, clip, status):
    Clip.objects.filter(pk=clip.pk).update(status=status)
    response = vote(client_for(founder), clip.pk)

    assert response.status_code == 409
    assert response.json()["code"] == "clip_not_pending"


@pytest.mark.parametrize("clip_id", ["999999", "abc"])
def test_an_unknown_clip_is_a_404(founder, clip_id):
    response = vote(client_for(founder), clip_id)

    assert response.status_code == 404
    assert response.json()["code"] == "clip_unknown"


def test_anonymous_voting_is_a_401(clip):
    assert vote(APIClient(), clip.pk).status_code == 401


def test_the_database_refuses_a_second_vote_even_past_the_service(founder, clip):
    Vote.objects.create(clip=clip, voter=founder, verdict="valid")

    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(clip=clip, voter=founder, verdict="valid")


def test_validation_next_assigns_a_pending_clip_the_trustee_may_judge(founder, clip):
    record(founder)  # their own: never offered
    decided = record(ContributorFactory())[0]
    Clip.objects.filter(pk=decided.pk).update(status=ClipStatus.VALID)
    client = client_for(founder)

    first = client.get("/api/v1/validation/next").json()
    vote(client, clip.pk)
    second = client.get("/api/v1/validation/next").json()

    assert first["clip"]["id"] == clip.pk
    assert first["clip"]["prompt_text"] == clip.prompt.text
    assert client.get(first["clip"]["audio_url"]).status_code == 200
    assert second == {"clip": None, "quota_left": 3}


def test_skipped_and_reported_clips_are_not_offered_again(founder, clip):
    other = record(ContributorFactory())[0]
    client = client_for(founder)

    assert client.post(f"/api/v1/clips/{clip.pk}/skip").status_code == 204
    report = client.post(f"/api/v1/clips/{other.pk}/report", {"reason": "offensive", "note": "shouting"}, format="json")
    bad_reason = client.post(f"/api/v1/clips/{other.pk}/report", {"reason": "boring"}, format="json")

    assert report.status_code == 201
    assert bad_reason.status_code == 400 and bad_reason.json()["code"] == "reason_invalid"
    assert client.get("/api/v1/validation/next").json()["clip"] is None


def test_validation_is_for_trustees_only():
    response = client_for(ContributorFactory()).get("/api/v1/validation/next")

    assert response.status_code == 403
    assert response.json()["code"] == "not_trustee"


def test_me_shows_trust_trustee_status_and_quota(founder):
    body = client_for(founder).get("/api/v1/me").json()

    assert (body["trust"], body["is_trustee"], body["quota_left"], body["votes_cast"]) == (1.0, True, 3, 0)


def test_my_clips_show_their_counted_votes_and_score(clip, founder):
    vote(client_for(founder), clip.pk)
    (mine,) = client_for(clip.contributor).get("/api/v1/clips/mine").json()

    assert (mine["votes_counted"], mine["votes_valid_counted"]) == (1, 1)
    assert mine["score"] == pytest.approx(0.2065, abs=1e-4)


def test_a_trustee_cannot_hear_decided_clips_of_others(founder, clip):
    Clip.objects.filter(pk=clip.pk).update(status=ClipStatus.VALID)

    assert client_for(founder).get(f"/api/v1/clips/{clip.pk}/audio").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_parallel_votes_never_double_count_or_overrun_the_quota():
    """Eight threads vote at once, each on its own connection: the same voter twice on one clip, and one
    voter with quota 3 on five clips. PostgreSQL is where this matters; SQLite serialises writers."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is shown against PostgreSQL (CI); SQLite serialises all writers")
    founder = FounderFactory()
    record(founder, 3)
    targets = record(ContributorFactory(), 5)
    attempts = [(targets[0].pk)] * 3 + [t.pk for t in targets[1:]]
    barrier = threading.Barrier(len(attempts))
    outcomes: list[str] = []

    def attempt(clip_id: int) -> None:
        barrier.wait()
        try:
            vote_cast(voter=founder, clip_id=clip_id, verdict="valid")
            outcomes.append("ok")
        except ServiceError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(pk,)) for pk in attempts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes.count("ok") == 3
    assert Vote.objects.filter(voter=founder).count() == 3
    assert Vote.objects.filter(clip=targets[0], voter=founder).count() <= 1
    assert set(outcomes) <= {"ok", "vote_duplicate", "quota_exhausted"}
    for c in Clip.objects.filter(pk__in=[t.pk for t in targets]):
        assert c.votes_counted == Vote.objects.filter(clip=c).count()


def test_validation_next_finishes_started_clips_first(founder):
    _fresh, started = record(ContributorFactory(), 2)
    helper = FounderFactory()
    record(helper)
    vote(client_for(helper), started.pk)

    offered = {client_for(founder).get("/api/v1/validation/next").json()["clip"]["id"] for _ in range(5)}

    assert offered == {started.pk}
