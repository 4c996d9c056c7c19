"""Operators in the admin: naming and removing founders (a recompute each time), allowances, and the page
that explains a contributor's trust from their clips and counted votes."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from contributors.models import Clip, ClipStatus, Contributor, Vote
from contributors.services.trust import trust_check, trust_recompute_all
from tests.factories import ContributorFactory, FounderFactory, PromptFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> Client:
    user = get_user_model().objects.create_superuser("operator", "op@example.org", "an-operator-password")
    client = Client()
    client.force_login(user)
    return client


def clip_of(contributor: Contributor) -> Clip:
    return Clip.objects.create(
        contributor=contributor, prompt=PromptFactory(), audio="x.flac", sha256=f"{Clip.objects.count():064d}",
        duration_s=2.0, original_format="WAV", original_sample_rate=16000, original_channels=1, original_bytes=1,
        rms_dbfs=-20, peak_dbfs=-3, clipping_ratio=0,
    )  # fmt: skip


def test_operators_name_and_remove_founders_from_the_admin(operator):
    people = [ContributorFactory() for _ in range(6)]
    candidate = ContributorFactory()
    clip = clip_of(candidate)
    Vote.objects.bulk_create(Vote(clip=clip, voter=p, verdict="valid") for p in people)
    trust_recompute_all()
    assert Clip.objects.get(pk=clip.pk).status == ClipStatus.PENDING  # nobody's votes count yet

    response = operator.post(
        "/admin/contributors/contributor/",
        {"action": "name_founders", "_selected_action": [p.pk for p in people]},
        follow=True,
    )

    assert "6 contributors named founding trustees; 6 of them trustees now." in response.content.decode()
    assert Clip.objects.get(pk=clip.pk).status == ClipStatus.VALID
    operator.post("/admin/contributors/contributor/", {"action": "remove_founders", "_selected_action": [people[0].pk]})
    assert not Contributor.objects.get(pk=people[0].pk).is_founding_trustee
    assert Clip.objects.get(pk=clip.pk).status == ClipStatus.PENDING
    assert trust_check().passed


def test_the_admin_explains_a_contributors_trust_and_lets_operators_set_an_allowance(operator):
    founders = [FounderFactory() for _ in range(6)]
    author = ContributorFactory()
    clips = [clip_of(author) for _ in range(7)]
    Vote.objects.bulk_create(Vote(clip=c, voter=f, verdict="valid") for c in clips[:6] for f in founders)
    Vote.objects.bulk_create(Vote(clip=clips[6], voter=f, verdict="invalid") for f in founders)
    trust_recompute_all()

    page = operator.get(f"/admin/contributors/contributor/{author.pk}/change/").content.decode()

    assert "Wilson lower bound of 6 valid among 7 decided clips (invalid 1, discarded 0; 0 pending" in page
    assert "= 0.487; not a trustee" in page
    assert f"clip {clips[6].pk}</a></td><td>invalid</td><td>0 valid of 6 counted" in page

    form = {
        "user": author.user.pk, "age_band": "", "gender": "", "accent": "", "first_language": "",
        "cc0_consent_at_0": "", "cc0_consent_at_1": "", "vote_allowance": "25",
    }  # fmt: skip
    response = operator.post(f"/admin/contributors/contributor/{author.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Contributor.objects.get(pk=author.pk).vote_allowance == 25
