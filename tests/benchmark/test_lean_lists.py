"""The releases, their file listings and a user's submissions come a page at a time (``count``, ``next``,
``previous``, ``results``) in a fixed number of queries."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from benchmark.models import Release, ReleaseFile, ReleaseStatus, Submission
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _releases(n: int) -> list[Release]:
    start = Release.objects.count()
    return [Release.objects.create(version=f"v{start + i + 1}", status=ReleaseStatus.READY) for i in range(n)]


def test_releases_are_paginated_in_a_fixed_number_of_queries(django_assert_num_queries):
    _releases(2)
    with django_assert_num_queries(3):  # the throttle's count, the page's count, the page
        body = APIClient().get("/api/v1/releases/").json()
    assert body["count"] == 2 and [r["version"] for r in body["results"]] == ["v2", "v1"]
    _releases(60)
    with django_assert_num_queries(3):
        body = APIClient().get("/api/v1/releases/").json()
    assert body["count"] == 62 and len(body["results"]) == 50 and body["next"]


def test_file_listings_are_paginated_and_the_pages_add_up(django_assert_num_queries):
    (release,) = _releases(1)
    ReleaseFile.objects.bulk_create(
        ReleaseFile(release=release, path=f"timit/f{i:04d}.wav", storage_name="x", format="timit", size=1, sha256="0")
        for i in range(30)
    )
    seen: list[str] = []
    url = "/api/v1/releases/v1/files?page_size=12"
    pages = 0
    while url:
        with django_assert_num_queries(4):  # the throttle, the release, the page's count, the page
            body = APIClient().get(url).json()
        seen += [f["path"] for f in body["results"]]
        url, pages = body["next"], pages + 1
    assert pages == 3 and seen == sorted(seen) and len(set(seen)) == 30


def test_my_submissions_are_paginated_with_the_quota_beside_them(django_assert_num_queries):
    user = UserFactory()
    client = APIClient()
    client.force_authenticate(user)
    Submission.objects.bulk_create(Submission(submitter=user, name=f"m{i}", size=1, sha256="0") for i in range(55))
    with django_assert_num_queries(4):  # the quota, the count, the page, its results (one prefetch)
        body = client.get("/api/v1/submissions/mine").json()
    assert body["count"] == 55 and len(body["results"]) == 50 and "quota_left" in body and body["next"]
    assert len(client.get("/api/v1/submissions/mine", {"page": 2}).json()["results"]) == 5
