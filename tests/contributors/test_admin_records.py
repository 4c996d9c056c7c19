"""Immutable records stay immutable in the admin, tried as a staff superuser through the admin's own pages:
consent timestamps, a profile's account, a clip's contributor, prompt, provenance, audio and hash, a prompt's text
once made, and votes. Clips are taken down by withdrawal, never deleted."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from contributors.models import Clip, ClipStatus, Contributor, Provenance, Vote
from contributors.services.clips import clip_submit
from tests.factories import ContributorFactory, FounderFactory, PromptFactory, UserFactory, speechlike, wav_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def clip(contributor):
    return clip_submit(contributor=contributor, prompt_id=PromptFactory().pk, data=wav_bytes(speechlike())).clip


def test_consent_timestamps_and_the_account_are_read_only(admin_client, contributor):
    contributor.guardian_consent_at = contributor.cc0_consent_at
    contributor.save()
    url = f"/admin/contributors/contributor/{contributor.pk}/change/"
    page = admin_client.get(url).content.decode()
    for field in ("cc0_consent_at", "guardian_consent_at", "user"):
        assert f'name="{field}' not in page, field  # shown as text, not an input
    consent, other = contributor.cc0_consent_at, UserFactory()

    response = admin_client.post(url, {
        "cc0_consent_at_0": "2001-01-01", "cc0_consent_at_1": "00:00:00", "guardian_consent_at_0": "",
        "guardian_consent_at_1": "", "user": other.pk, "age_band": "", "gender": "", "accent": "Edited",
        "first_language": "", "vote_allowance": 0,
    })  # fmt: skip

    assert response.status_code == 302, response.content.decode()[:2000]
    contributor.refresh_from_db()
    assert contributor.accent == "Edited"  # the form works; the record fields did not move
    assert (contributor.cc0_consent_at, contributor.guardian_consent_at) == (consent, consent)
    assert contributor.user_id != other.pk


def test_a_clip_is_view_only_in_the_admin(admin_client, clip):
    url = f"/admin/contributors/clip/{clip.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    for field in ("contributor", "prompt", "provenance", "sha256", "audio"):
        assert f'name="{field}"' not in html, field
    assert 'name="_save"' not in html  # no save button on a view-only page
    other_prompt, other_contributor = PromptFactory(), ContributorFactory()

    edited = admin_client.post(url, {
        "contributor": other_contributor.pk, "prompt": other_prompt.pk, "provenance": Provenance.IMPORTED,
        "sha256": "0" * 64, "audio": "elsewhere.flac",
    })  # fmt: skip

    assert edited.status_code == 403
    after = Clip.objects.get(pk=clip.pk)
    assert (after.contributor_id, after.prompt_id, after.provenance, after.sha256, after.audio.name) == (
        clip.contributor_id, clip.prompt_id, clip.provenance, clip.sha256, clip.audio.name,
    )  # fmt: skip
    assert admin_client.get("/admin/contributors/clip/add/").status_code == 403
    assert admin_client.post(f"/admin/contributors/clip/{clip.pk}/delete/", {"post": "yes"}).status_code == 403
    assert 'value="delete_selected"' not in admin_client.get("/admin/contributors/clip/").content.decode()


def test_operators_take_a_clip_down_by_withdrawing_it(admin_client, clip, django_capture_on_commit_callbacks):
    name = clip.audio.name
    with django_capture_on_commit_callbacks(execute=True):  # the audio is deleted once the withdrawal commits
        response = admin_client.post(
            "/admin/contributors/clip/", {"action": "withdraw", "_selected_action": [clip.pk]}, follow=True
        )
    assert f"Clip {clip.pk} withdrawn." in response.content.decode()
    clip.refresh_from_db()
    assert clip.withdrawn_at is not None and clip.status == ClipStatus.DISCARDED and clip.status_fixed
    assert not default_storage.exists(name)
    again = admin_client.post(
        "/admin/contributors/clip/", {"action": "withdraw", "_selected_action": [clip.pk]}, follow=True
    )
    assert "already withdrawn" in again.content.decode()


def test_staff_who_may_only_view_clips_cannot_withdraw_them(client, clip):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_clip"))
    client.force_login(viewer)
    assert client.get(f"/admin/contributors/clip/{clip.pk}/change/").status_code == 200
    assert 'value="withdraw"' not in client.get("/admin/contributors/clip/").content.decode()
    client.post("/admin/contributors/clip/", {"action": "withdraw", "_selected_action": [clip.pk]})
    clip.refresh_from_db()
    assert clip.withdrawn_at is None


def test_votes_are_not_added_edited_or_deleted_in_the_admin(admin_client, clip):
    vote = Vote.objects.create(clip=clip, voter=FounderFactory(), verdict="valid")
    url = f"/admin/contributors/vote/{vote.pk}/change/"
    assert admin_client.get(url).status_code == 200  # visible
    assert admin_client.post(url, {"clip": clip.pk, "voter": vote.voter_id, "verdict": "invalid"}).status_code == 403
    assert admin_client.post(f"/admin/contributors/vote/{vote.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/contributors/vote/add/").status_code == 403
    vote.refresh_from_db()
    assert vote.verdict == "valid"


def test_a_prompts_text_is_fixed_once_made(admin_client, clip):
    prompt = clip.prompt
    url = f"/admin/contributors/prompt/{prompt.pk}/change/"
    assert 'name="text"' not in admin_client.get(url).content.decode()
    admin_client.post(url, {"text": "Something else entirely.", "prompt_type": prompt.prompt_type, "source": ""})
    prompt.refresh_from_db()
    assert prompt.text != "Something else entirely."


def test_the_admins_contributor_form_still_saves_a_new_profile(admin_client):
    user = UserFactory()
    response = admin_client.post("/admin/contributors/contributor/add/", {
        "user": user.pk, "age_band": "", "gender": "", "accent": "", "first_language": "", "vote_allowance": 0,
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Contributor.objects.get(user=user).cc0_consent_at is None  # consent is the contributor's to give
