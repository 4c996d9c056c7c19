"""The demo ends by building a release from its valid clips, shown on the releases page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from benchmark.models import Release
from demo.seed import DEMO_RELEASE, _seed_release

pytestmark = pytest.mark.django_db


def test_demo_builds_a_release_once_and_the_page_shows_it(corpus, client):
    said: list[str] = []
    _seed_release(out=said.append)
    assert Release.objects.get(version=DEMO_RELEASE).status == "ready"
    link = f'<a href="{reverse("release-page", args=[DEMO_RELEASE])}">{DEMO_RELEASE}</a>'
    assert client.get("/releases/").content.decode().count(link) == 1  # listed once, linking to its page
    _seed_release(out=said.append)
    assert Release.objects.count() == 1 and "already exists" in said[-1]


def test_demo_without_valid_clips_says_so(db):
    said: list[str] = []
    _seed_release(out=said.append)
    assert said == ["No demo release: There are no valid clips to release."] and not Release.objects.exists()
