"""Your voice, your data: the export (API and page) and account deletion (API and page): what the zip holds,
what deletion removes, what the next release says about it, and that the trust state stays one definition."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from benchmark.releases.selectors import release_clips_valid
from contributors.models import (
    ClipReport,
    ClipStatus,
    Contributor,
    PromptReport,
    PromptSkip,
    ProposalReview,
    SentenceProposal,
    TrustRecompute,
    Vote,
)
from contributors.services.clips import clip_withdraw
from contributors.services.own_data import contributor_delete, contributor_export
from contributors.services.trust import trust_check
from core.errors import ServiceError
from frontend.selectors import corpus_overview, dashboard_for
from tests.benchmark.conftest import build, make_corpus
from tests.contributors.test_votes import client_for, record
from tests.factories import ContributorFactory, FounderFactory

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-enough-password"


def person(**kwargs) -> Contributor:
    contributor = ContributorFactory(gender="female", accent="Scottish", age_band="30-44", **kwargs)
    contributor.user.email = "me@example.org"
    contributor.user.set_password(PASSWORD)
    contributor.user.save()
    return contributor


def logged_in(contributor: Contributor) -> Client:
    client = Client()
    client.force_login(contributor.user)  # a password login goes through django-axes, which needs a request
    return client


def unzip(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


# --- export ----------------------------------------------------------------------------------------------------


def test_the_export_holds_the_account_every_clip_the_votes_and_the_audio_byte_for_byte():
    me = person()
    founder = FounderFactory(vote_allowance=10)
    kept, gone = record(me, 2)
    clip_withdraw(contributor=me, clip_id=gone.pk)
    theirs = record(founder)[0]
    Vote.objects.create(clip=theirs, voter=me, verdict="invalid", reason="noise")
    ClipReport.objects.create(clip=theirs, reporter=me, reason="noise", note="a dog barks")
    # What the sentence pages hold about them too: a skipped and a reported prompt, a proposal and a review.
    PromptSkip.objects.create(prompt=theirs.prompt, contributor=me)
    PromptReport.objects.create(prompt=kept.prompt, reporter=me, reason="misspelt", note="teh")
    mine = SentenceProposal.objects.create(author=me, text="My own sentence here.", normalised_text="my own sentence")
    other = SentenceProposal.objects.create(author=founder, text="Their sentence.", normalised_text="their sentence")
    ProposalReview.objects.create(proposal=other, reviewer=me, approve=False)
    kept.refresh_from_db()

    response = client_for(me).get("/api/v1/me/export")

    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert f'filename="my-data-{me.speaker_id}.zip"' in response["Content-Disposition"]
    archive = unzip(response)
    member = f"audio/clip-{kept.pk:08d}_prompt-{kept.prompt_id:06d}.flac"
    assert archive.namelist() == ["README.txt", "data.json", member]  # no audio for the withdrawn clip
    with default_storage.open(kept.audio.name, "rb") as stored:
        assert archive.read(member) == stored.read()
    data = json.loads(archive.read("data.json"))
    assert data["account"]["username"] == me.user.username and data["account"]["email"] == "me@example.org"
    assert data["profile"] == data["profile"] | {
        "speaker_id": me.speaker_id, "gender": "female", "accent": "Scottish", "age_band": "30-44"
    }  # fmt: skip
    assert data["profile"]["cc0_consent_at"] and "trust" in data["trust"]
    clips = {c["id"]: c for c in data["clips"]}
    assert set(clips) == {kept.pk, gone.pk}
    assert clips[kept.pk]["audio"] == member and clips[kept.pk]["sha256"] == kept.sha256
    assert clips[kept.pk]["prompt"]["text"] == kept.prompt.text and clips[kept.pk]["rms_dbfs"] == kept.rms_dbfs
    assert clips[gone.pk]["audio"] is None and clips[gone.pk]["withdrawn_at"]
    assert data["votes_cast"] == [
        {"clip": theirs.pk, "verdict": "invalid", "reason": "noise", "created_at": data["votes_cast"][0]["created_at"]}
    ]
    assert data["reports"][0]["note"] == "a dog barks"
    assert [r["prompt"] for r in data["sentence_skips"]] == [theirs.prompt.text]
    assert [(r["prompt"], r["note"]) for r in data["sentence_reports"]] == [(kept.prompt.text, "teh")]
    assert [(p["text"], p["status"]) for p in data["sentence_proposals"]] == [(mine.text, "open")]
    assert [(r["proposal"], r["approve"]) for r in data["proposal_reviews"]] == [(other.text, False)]
    assert "password" not in json.dumps(data)


def test_the_dashboard_offers_the_export_and_the_deletion():
    me = person()
    page = logged_in(me).get("/dashboard/").content.decode()
    assert 'href="/api/v1/me/export"' in page and 'href="/account/delete/"' in page
    download = logged_in(me).get("/api/v1/me/export")  # the button's link, with the page's session
    assert download.status_code == 200 and "data.json" in unzip(download).namelist()


def test_the_export_needs_a_login():
    assert APIClient().get("/api/v1/me/export").status_code in (401, 403)


# --- deletion --------------------------------------------------------------------------------------------------


def test_deletion_through_the_api_removes_the_person_and_keeps_an_anonymous_speaker(django_capture_on_commit_callbacks):
    me = person()
    clips = record(me, 2)
    names = [c.audio.name for c in clips]
    client = APIClient()
    client.force_login(me.user)
    username = me.user.username

    asked = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/me/delete", {"password": PASSWORD}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["deleted"] is True and response.json()["explained"]
    assert not get_user_model().objects.filter(username=username).exists()
    me.refresh_from_db()
    assert me.user is None and asked <= me.deleted_at <= timezone.now()
    assert (me.gender, me.accent, me.age_band, me.first_language) == ("", "", "", "")
    assert not any(default_storage.exists(name) for name in names)
    for clip in clips:
        clip.refresh_from_db()
        assert clip.withdrawn_at is not None and clip.audio.name == ""
        assert (clip.status, clip.status_fixed) == (ClipStatus.DISCARDED, True)  # they were pending
    assert client.get("/api/v1/me").status_code in (401, 403)  # the session ended
    login = APIClient().post("/api/v1/auth/login", {"username": username, "password": PASSWORD}, format="json")
    assert login.status_code == 400 and login.json()["code"] == "login_failed"
    assert TrustRecompute.objects.filter(trigger="account_deletion").count() == 1
    call_command("trust_recompute", "--check")
    overview = corpus_overview()  # the home page's counts leave the deleted account's clips out
    assert overview.contributors == 0 and sum(overview.clips_by_status.values()) == 0


@pytest.mark.parametrize(
    ("body", "code"), [({"password": "not-my-password"}, "password_wrong"), ({}, "password_missing")]
)
def test_deletion_with_a_wrong_or_missing_password_is_a_400_and_changes_nothing(body, code):
    me = person()
    record(me)

    response = client_for(me).post("/api/v1/me/delete", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code and response.json()["message"]
    me.refresh_from_db()
    assert me.user is not None and me.deleted_at is None and me.clips.filter(withdrawn_at__isnull=True).count() == 1


def test_the_page_explains_before_it_deletes_and_a_wrong_password_keeps_the_account():
    me = person()
    client = logged_in(me)
    page = client.get("/account/delete/").content.decode()
    assert "Releases already published cannot be changed" in page and "cannot be undone" in page
    assert 'name="password"' in page

    wrong = client.post("/account/delete/", {"password": "nope"})
    assert wrong.status_code == 400 and "not your password" in wrong.content.decode()
    assert get_user_model().objects.filter(pk=me.user_id).exists()

    done = client.post("/account/delete/", {"password": PASSWORD}, follow=True)
    assert done.redirect_chain[-1][0] == "/" and "Your account is deleted" in done.content.decode()
    assert not get_user_model().objects.filter(pk=me.user_id).exists()
    assert client.get("/dashboard/").status_code == 302  # logged out


def test_a_deleted_contributors_votes_and_decided_clips_keep_the_trust_state_as_it_was():
    """Validation already done stands: the deleted person's votes keep counting and their decided clips keep
    their status, so no other clip and no trust moves; only their pending clip is discarded."""
    founders = [FounderFactory() for _ in range(6)]
    me = person()
    mine = record(me, 7)
    Vote.objects.bulk_create(Vote(clip=c, voter=f, verdict="valid") for c in mine[:6] for f in founders)
    other = ContributorFactory()
    theirs = record(other)[0]
    call_command("trust_recompute")  # six valid clips: I am a trustee
    me.refresh_from_db()
    assert me.is_trustee
    # My vote is one of the six that make their clip valid.
    Vote.objects.bulk_create(Vote(clip=theirs, voter=v, verdict="valid") for v in [me, *founders[:5]])
    call_command("trust_recompute")
    theirs.refresh_from_db()
    assert theirs.status == ClipStatus.VALID
    before = {c.pk: (c.status, c.score, c.votes_counted) for c in type(theirs).objects.all()}
    trust_before = dict(Contributor.objects.values_list("pk", "trust"))

    assert client_for(me).post("/api/v1/me/delete", {"password": PASSWORD}, format="json").status_code == 200

    recompute = TrustRecompute.objects.get(trigger="account_deletion")
    assert recompute.clips_changed == 0 and recompute.contributors_changed == 0
    after = {c.pk: (c.status, c.score, c.votes_counted) for c in type(theirs).objects.all()}
    assert {pk: v for pk, v in after.items() if pk != mine[6].pk} == {
        pk: v for pk, v in before.items() if pk != mine[6].pk
    }
    assert after[mine[6].pk][0] == ClipStatus.DISCARDED  # the pending one
    assert dict(Contributor.objects.values_list("pk", "trust")) == trust_before
    assert Vote.objects.filter(voter=me).count() == 1
    assert trust_check().passed
    call_command("trust_recompute", "--check")
    assert set(release_clips_valid()) == {theirs}  # my valid clips are out of every future release


def test_the_next_release_drops_a_deleted_accounts_clips_and_its_delta_lists_them(settings):
    corpus = make_corpus(speakers=14, clips_each=2)
    first = build("v1")
    root = default_storage.path(first.manifest_path).rsplit("/", 1)[0]
    published = [json.loads(line) for line in open(f"{root}/manifest.jsonl")]  # noqa: SIM115
    speakers = {row["speaker_id"] for row in published}
    leaver, withdrawer = [c for c in corpus if c.speaker_id in speakers][:2]
    leaver.user.set_password(PASSWORD)
    leaver.user.save()
    mine = sorted(r["utt_id"] for r in published if r["speaker_id"] == leaver.speaker_id)
    withdrawn = withdrawer.clips.order_by("id").first()
    clip_withdraw(contributor=withdrawer, clip_id=withdrawn.pk)
    withdrawn_utt = next(r["utt_id"] for r in published if r["sha256"] == withdrawn.sha256)

    assert client_for(leaver).post("/api/v1/me/delete", {"password": PASSWORD}, format="json").status_code == 200
    call_command("trust_recompute", "--check")
    second = build("v2")

    root2 = default_storage.path(second.manifest_path).rsplit("/", 1)[0]
    rows = [json.loads(line) for line in open(f"{root2}/manifest.jsonl")]  # noqa: SIM115
    assert leaver.speaker_id not in {r["speaker_id"] for r in rows}
    assert withdrawn.sha256 not in {r["sha256"] for r in rows}
    delta = json.loads(open(f"{root2}/DELTA.json").read())  # noqa: SIM115
    assert delta["deleted"] == mine and delta["withdrawn"] == [withdrawn_utt]
    assert set(mine) | {withdrawn_utt} <= set(delta["removed"])
    readme = open(f"{root2}/README.md").read()  # noqa: SIM115
    assert "deleted their accounts" in readme


def test_the_dashboard_counts_a_withdrawn_clip_as_withdrawn_not_discarded():
    me = person()
    kept, gone = record(me, 2)
    clip_withdraw(contributor=me, clip_id=gone.pk)
    by_status = dashboard_for(contributor=me).by_status
    assert (by_status["withdrawn"], by_status["discarded"], by_status[kept.status]) == (1, 0, 1)
    page = logged_in(me).get("/dashboard/").content.decode()
    assert "Withdrawn</span>" in page


def test_a_deleted_account_has_nothing_to_export_a_410_not_a_crash():
    me = person()
    contributor_delete(contributor=me, password=PASSWORD)
    me.refresh_from_db()

    with pytest.raises(ServiceError) as refused:
        contributor_export(contributor=me)

    assert (refused.value.code, refused.value.status_code) == ("account_deleted", 410)
