"""A contributor hears and takes back their own recordings: withdrawal deletes the audio, fixes the clip to
discarded (out of the queue, of trust and of every future release) and keeps the trust state one definition."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from benchmark.releases.selectors import release_clips_valid
from contributors.models import AssignmentOutcome, ClipStatus, Contributor, TrustRecompute, ValidationAssignment, Vote
from contributors.services.trust import trust_check
from tests.contributors.test_votes import client_for, record
from tests.factories import ContributorFactory, FounderFactory, assign

pytestmark = pytest.mark.django_db


def withdraw(client: APIClient, clip_id: int):
    return client.post(f"/api/v1/clips/{clip_id}/withdraw")


def test_withdrawing_a_pending_clip_deletes_its_audio_and_takes_it_out_of_the_queue(
    django_capture_on_commit_callbacks,
):
    author = ContributorFactory()
    clip = record(author)[0]
    founder = FounderFactory()
    record(founder)
    assign(founder, clip)  # a trustee holds it right now
    name = clip.audio.name
    assert default_storage.exists(name)

    with django_capture_on_commit_callbacks(execute=True):  # the file goes once the withdrawal commits
        response = withdraw(client_for(author), clip.pk)

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "discarded" and response.json()["withdrawn_at"]
    clip.refresh_from_db()
    assert (clip.status, clip.status_fixed, clip.audio.name) == (ClipStatus.DISCARDED, True, "")
    assert not default_storage.exists(name)
    audio = client_for(author).get(f"/api/v1/clips/{clip.pk}/audio")
    assert audio.status_code == 410 and audio.json()["code"] == "clip_withdrawn"
    assert ValidationAssignment.objects.get(clip=clip).outcome == AssignmentOutcome.WITHDRAWN
    assert client_for(founder).get("/api/v1/validation/next").json()["reason"] == "queue_empty"
    assert TrustRecompute.objects.filter(trigger="withdrawal").count() == 1
    assert trust_check().passed


def test_withdrawing_a_valid_clip_leaves_future_releases_and_the_authors_trust():
    founders = [FounderFactory() for _ in range(6)]
    author = ContributorFactory()
    clips = record(author, 6)
    Vote.objects.bulk_create(Vote(clip=c, voter=f, verdict="valid") for c in clips for f in founders)
    call_command("trust_recompute")  # six valid clips, none rejected: a trustee
    author.refresh_from_db()
    assert author.is_trustee and set(release_clips_valid()) == set(clips)

    assert withdraw(client_for(author), clips[0].pk).status_code == 200

    author.refresh_from_db()
    assert not author.is_trustee  # five valid clips are one short
    assert set(release_clips_valid()) == set(clips[1:])
    assert trust_check().passed


def test_only_the_author_withdraws_and_only_once():
    author, other = ContributorFactory(), ContributorFactory()
    clip = record(author)[0]

    stranger = withdraw(client_for(other), clip.pk)
    first, again = withdraw(client_for(author), clip.pk), withdraw(client_for(author), clip.pk)

    assert stranger.status_code == 404 and stranger.json()["code"] == "clip_unknown"
    assert first.status_code == 200
    assert again.status_code == 409 and again.json()["code"] == "clip_withdrawn"
    assert withdraw(APIClient(), clip.pk).status_code in (401, 403)
    assert withdraw(client_for(author), 10**9).status_code == 404


def test_the_dashboard_plays_back_and_withdraws_a_recording(client):
    author = ContributorFactory(user__username="owner")
    kept, taken = record(author, 2)
    client.force_login(author.user)

    page = client.get("/dashboard/").content.decode()
    assert f'src="/api/v1/clips/{kept.pk}/audio"' in page and f"/dashboard/clips/{taken.pk}/withdraw/" in page

    asked = timezone.now()
    response = client.post(f"/dashboard/clips/{taken.pk}/withdraw/", follow=True)

    page = response.content.decode()
    assert response.status_code == 200 and "Its audio is deleted." in page
    assert f'src="/api/v1/clips/{taken.pk}/audio"' not in page and "Withdrawn" in page
    assert asked <= Contributor.objects.get(pk=author.pk).clips.get(pk=taken.pk).withdrawn_at <= timezone.now()
    assert client.get(f"/dashboard/clips/{taken.pk}/withdraw/").status_code == 405
