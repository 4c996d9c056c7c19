"""Releases are withdrawn, never deleted: through the admin as a staff user, the release leaves the public list,
pages, API, downloads and leaderboard, while its rows and stored files stay."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from benchmark.models import Release, ReleaseFile, ReleaseStatus, SpeakerSplit
from benchmark.releases.services import release_create
from tests.benchmark.conftest import build, make_corpus, release_root

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_release(db):
    make_corpus(speakers=6, clips_each=1)
    return build("v1")


def test_the_admin_cannot_delete_a_release_or_its_files_or_splits(admin_client, small_release):
    release_file = ReleaseFile.objects.filter(release=small_release).first()
    split = SpeakerSplit.objects.first()
    for url in [
        f"/admin/benchmark/release/{small_release.pk}/delete/",
        f"/admin/benchmark/releasefile/{release_file.pk}/delete/",
        f"/admin/benchmark/speakersplit/{split.speaker_id}/delete/",
    ]:
        assert admin_client.get(url).status_code == 403, url
        assert admin_client.post(url, {"post": "yes"}).status_code == 403, url
    changelist = admin_client.get("/admin/benchmark/release/").content.decode()
    assert 'value="delete_selected"' not in changelist and 'value="withdraw"' in changelist
    bulk = {"action": "delete_selected", "_selected_action": [small_release.pk], "post": "yes"}
    bulk = admin_client.post("/admin/benchmark/release/", bulk)
    assert bulk.status_code in (200, 302)
    assert Release.objects.filter(pk=small_release.pk).exists()
    assert ReleaseFile.objects.filter(release=small_release).exists()


def test_withdrawing_a_release_hides_it_and_keeps_its_files(admin_client, small_release, settings):
    anon = APIClient()
    files_before = sorted(p.name for p in release_root(settings, small_release).rglob("*") if p.is_file())
    rows_before = ReleaseFile.objects.filter(release=small_release).count()
    assert anon.get("/api/v1/releases/v1/files/manifest.jsonl").status_code == 200

    response = admin_client.post(
        "/admin/benchmark/release/", {"action": "withdraw", "_selected_action": [small_release.pk]}, follow=True
    )

    assert "Release v1 withdrawn." in response.content.decode()
    small_release.refresh_from_db()
    assert small_release.status == ReleaseStatus.WITHDRAWN and small_release.withdrawn_at is not None
    # Gone from every public place, with a code that says why...
    assert [r["version"] for r in anon.get("/api/v1/releases/").json()["results"]] == []
    for url in ["/api/v1/releases/v1/", "/api/v1/releases/v1/files/manifest.jsonl"]:
        gone = anon.get(url)
        assert (gone.status_code, gone.json()["code"]) == (404, "release_withdrawn"), url
    assert anon.get("/releases/v1/").status_code == 404
    assert "v1" not in anon.get("/releases/").content.decode()
    assert anon.get("/api/v1/leaderboard/", {"release": "v1"}).status_code == 404
    # ... while the record stays: rows, stored files, and the speakers' splits for later releases.
    assert ReleaseFile.objects.filter(release=small_release).count() == rows_before
    assert sorted(p.name for p in release_root(settings, small_release).rglob("*") if p.is_file()) == files_before
    assert SpeakerSplit.objects.filter(first_release=small_release).exists()
    # The admin records who did it.
    from django.contrib.admin.models import LogEntry

    assert LogEntry.objects.filter(object_id=str(small_release.pk), change_message="Withdrawn.").exists()


def test_only_a_published_release_is_withdrawn(admin_client, small_release):
    building = release_create(version="v2")
    response = admin_client.post(
        "/admin/benchmark/release/", {"action": "withdraw", "_selected_action": [building.pk]}, follow=True
    )
    assert "only a published (ready) release is withdrawn" in response.content.decode()
    building.refresh_from_db()
    assert building.status == ReleaseStatus.BUILDING


def test_a_release_is_not_edited_in_the_admin(admin_client, small_release):
    page = admin_client.get(f"/admin/benchmark/release/{small_release.pk}/change/").content.decode()
    assert 'name="status"' not in page and 'name="version"' not in page
    admin_client.post(f"/admin/benchmark/release/{small_release.pk}/change/", {"status": "failed", "version": "x"})
    small_release.refresh_from_db()
    assert (small_release.status, small_release.version) == (ReleaseStatus.READY, "v1")
