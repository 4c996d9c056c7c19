"""Release file downloads answer conditional requests as RFC 9110 says: If-None-Match by weak comparison and
``*`` (304), If-Match by strong comparison (412 otherwise), If-Range only on a strong match."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from benchmark.models import Release, ReleaseFile, ReleaseStatus

pytestmark = pytest.mark.django_db

DATA = b"0123456789" * 100
URL = "/api/v1/releases/v7/files/LICENSE"


@pytest.fixture
def etag() -> str:
    release = Release.objects.create(version="v7", status=ReleaseStatus.READY)
    name = default_storage.save("releases/v7/LICENSE", ContentFile(DATA))
    digest = hashlib.sha256(DATA).hexdigest()
    ReleaseFile.objects.create(
        release=release, path="LICENSE", storage_name=name, format="meta", size=len(DATA), sha256=digest
    )
    return f'"{digest}"'


def _get(**headers):
    return APIClient().get(URL, **headers)


@pytest.mark.parametrize(
    "if_none_match",
    [
        "{etag}",
        "W/{etag}",  # weak comparison: a weak tag with the same opaque value matches
        '"other", W/{etag}',
        "*",  # any current representation
        ' "a" ,{etag} ',
    ],
)
def test_if_none_match_answers_304_with_the_validators(etag, if_none_match):
    response = _get(HTTP_IF_NONE_MATCH=if_none_match.format(etag=etag))
    assert response.status_code == 304
    assert response["ETag"] == etag and "immutable" in response["Cache-Control"]
    assert not response.content


@pytest.mark.parametrize("if_none_match", ['"other"', 'W/"other"', "garbage", ""])
def test_if_none_match_that_does_not_match_sends_the_file(etag, if_none_match):
    response = _get(HTTP_IF_NONE_MATCH=if_none_match)
    assert response.status_code == 200 and b"".join(response.streaming_content) == DATA


def test_head_is_conditional_too(etag):
    assert APIClient().head(URL, HTTP_IF_NONE_MATCH="*").status_code == 304


def test_if_match_is_strong(etag):
    assert _get(HTTP_IF_MATCH=etag).status_code == 200
    assert _get(HTTP_IF_MATCH="*").status_code == 200
    for refused in ('"other"', f"W/{etag}"):  # a weak tag never matches strongly
        response = _get(HTTP_IF_MATCH=refused)
        assert response.status_code == 412
        assert response.json()["code"] == "precondition_failed" and response.json()["message"]


def test_if_unmodified_since_is_ignored_on_a_file_with_no_modification_date(etag):
    for date in ("Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 01 Jan 2100 00:00:00 GMT"):
        response = _get(HTTP_IF_UNMODIFIED_SINCE=date)
        assert response.status_code == 200 and b"".join(response.streaming_content) == DATA
    assert _get(HTTP_IF_UNMODIFIED_SINCE="Wed, 21 Oct 2015 07:28:00 GMT", HTTP_IF_MATCH='"other"').status_code == 412


def test_if_range_takes_the_range_only_on_a_strong_match(etag):
    ranged = _get(HTTP_RANGE="bytes=10-19", HTTP_IF_RANGE=etag)
    assert ranged.status_code == 206 and b"".join(ranged.streaming_content) == DATA[10:20]
    for stale in (f"W/{etag}", '"other"', "Wed, 21 Oct 2015 07:28:00 GMT"):
        whole = _get(HTTP_RANGE="bytes=10-19", HTTP_IF_RANGE=stale)
        assert whole.status_code == 200 and b"".join(whole.streaming_content) == DATA


def test_a_range_of_thousands_of_digits_is_read_as_the_position_it_spells(etag):
    zeros = _get(HTTP_RANGE=f"bytes={'0' * 5000}-1")
    assert zeros.status_code == 206 and b"".join(zeros.streaming_content) == DATA[:2]
    past = _get(HTTP_RANGE=f"bytes={'9' * 5000}-")
    assert past.status_code == 416 and past.json()["code"] == "range_not_satisfiable"
