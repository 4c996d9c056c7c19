"""A contributor's clips come a page at a time in a fixed number of queries; an analysis that keeps failing is
given up after a bounded number of attempts, its error on the clip."""

from __future__ import annotations

import itertools
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from contributors.models import Clip
from contributors.services import clips as clip_services
from tests.factories import ContributorFactory, PromptFactory

pytestmark = pytest.mark.django_db

_sha = itertools.count()


def _clip(contributor, **fields) -> Clip:
    """A clip row without audio work (the reads under test never open the file)."""
    values = {
        "audio": f"clips/00/{next(_sha):064d}.flac",
        "duration_s": 2.0,
        "original_format": "WAV",
        "original_sample_rate": 16_000,
        "original_channels": 1,
        "original_bytes": 64_000,
        "rms_dbfs": -20.0,
        "peak_dbfs": -3.0,
        "clipping_ratio": 0.0,
        **fields,
    }
    values.setdefault("sha256", values["audio"].rsplit("/", 1)[1].removesuffix(".flac"))
    return Clip.objects.create(contributor=contributor, prompt=PromptFactory(), **values)


def test_my_clips_are_paginated_in_a_fixed_number_of_queries(django_assert_num_queries):
    me = ContributorFactory()
    client = APIClient()
    client.force_authenticate(me.user)
    for _ in range(3):
        _clip(me)
    _clip(ContributorFactory())  # someone else's
    # The count, the page with its prompts (the contributor comes with the authenticated user, as token
    # authentication loads it with the token).
    with django_assert_num_queries(2):
        small = client.get("/api/v1/clips/mine").json()
    assert small["count"] == 3 and len(small["results"]) == 3 and small["next"] is None
    for _ in range(57):
        _clip(me)
    with django_assert_num_queries(2):
        first = client.get("/api/v1/clips/mine").json()
    assert first["count"] == 60 and len(first["results"]) == 50 and first["next"].endswith("page=2")
    last = client.get("/api/v1/clips/mine", {"page": 2}).json()
    assert len(last["results"]) == 10
    assert {c["id"] for c in first["results"]} | {c["id"] for c in last["results"]} == set(
        me.clips.values_list("pk", flat=True)
    )
    assert client.get("/api/v1/clips/mine", {"page_size": 1000}).json()["results"].__len__() == 60
    bad = client.get("/api/v1/clips/mine", {"page": "9" * 5000})
    assert bad.status_code == 404 and bad.json()["code"] == "not_found"


def test_an_analysis_that_keeps_failing_is_given_up_with_its_error(settings):
    clip = _clip(ContributorFactory())  # its file is missing: the analysis fails every time
    Clip.objects.filter(pk=clip.pk).update(updated_at=timezone.now() - timedelta(hours=1))

    def run_now(clip_id: int) -> None:
        clip_services.clip_analyse(clip_id=clip_id)

    with mock.patch("contributors.tasks.clip_analyse.delay", side_effect=run_now):
        sweeps = [clip_services.clips_analyse_missing() for _ in range(clip_services.ANALYSIS_MAX_ATTEMPTS + 2)]

    assert sweeps == [1] * clip_services.ANALYSIS_MAX_ATTEMPTS + [0, 0]  # then never enqueued again
    clip.refresh_from_db()
    assert clip.analysis_attempts == clip_services.ANALYSIS_MAX_ATTEMPTS
    assert clip.analysed_at is None and clip.analysis_error.startswith("FileNotFoundError")
    # A direct call (a message still in the queue) does not try again either.
    assert clip_services.clip_analyse(clip_id=clip.pk).analysis_attempts == clip_services.ANALYSIS_MAX_ATTEMPTS


def test_a_successful_analysis_clears_an_earlier_error(contributor, prompt):
    from tests.factories import speechlike, wav_bytes

    clip = clip_services.clip_submit(contributor=contributor, prompt_id=prompt.pk, data=wav_bytes(speechlike())).clip
    Clip.objects.filter(pk=clip.pk).update(analysis_attempts=1, analysis_error="OSError: storage blip")
    analysed = clip_services.clip_analyse(clip_id=clip.pk)
    assert analysed.analysed_at is not None and analysed.analysis_error == "" and analysed.analysis_attempts == 2


@pytest.mark.parametrize("page", ["\u0661", "\uff11", "1_0", " 1", "+1", "0", "-1", "1.0"])
def test_a_page_number_in_anything_but_ascii_digits_is_not_a_page(page):
    client = APIClient()
    client.force_authenticate(ContributorFactory().user)
    response = client.get("/api/v1/clips/mine", {"page": page})
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert client.get("/api/v1/clips/mine", {"page": "1"}).status_code == 200


@pytest.mark.parametrize("size", ["\u0665", "5_0", "0", "-5", "x"])
def test_a_page_size_in_anything_but_ascii_digits_is_refused(size):
    client = APIClient()
    client.force_authenticate(ContributorFactory().user)
    response = client.get("/api/v1/clips/mine", {"page_size": size})
    assert response.status_code == 400 and response.json()["code"] == "page_size_invalid"
