"""Large uploads are bounded across processes (core.slots, core.middleware): a slot is taken atomically on the shared
storage (the database, or Redis), frees itself when its lease ends, and a large upload beyond the limit is refused
with 503 ``uploads_busy`` and Retry-After before its body is read. A model upload is checked where Django streamed
it, with no second copy."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from benchmark.leaderboard import services as submissions_service
from benchmark.models import Submission
from core.slots import slot_acquire, slot_release
from tests.benchmark.test_submissions import good_model
from tests.broker import EVALUATION, Enqueued
from tests.core.test_rate_limits import _concurrently, redis_cache  # noqa: F401 (a fixture)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RealClock:
    """Redis expires keys by its own clock."""

    def __call__(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        time.sleep(seconds)


def check_slots(clock, lease_s: int) -> None:
    def take():
        return slot_acquire("t", slots=3, lease_s=lease_s, now=clock())

    held = sorted((slot for slot in _concurrently(lambda i: take(), n=12) if slot is not None), key=lambda s: s.key)
    assert [slot.key for slot in held] == ["slot:t:0", "slot:t:1", "slot:t:2"]  # never more than three
    assert take() is None  # their leases still run

    slot_release(held[0])
    again = take()
    assert again is not None and again.key == held[0].key

    # Every lease runs out (their processes died): a slot is taken over, and its old holder's release frees
    # nothing, so of three more only the two other slots are had.
    clock.advance(lease_s + 0.2)
    late = take()
    assert late is not None and late.key == again.key
    slot_release(again)
    others = [take() for _ in range(3)]
    assert sorted(slot.key for slot in others if slot is not None) == ["slot:t:1", "slot:t:2"]
    for slot in [late, *others]:
        if slot is not None:
            slot_release(slot)


def test_slots_on_the_database_are_bounded_leased_and_released_by_their_holder_only():
    check_slots(FakeClock(), lease_s=60)


@pytest.mark.usefixtures("redis_cache")
def test_slots_on_redis_are_bounded_leased_and_released_by_their_holder_only():
    check_slots(RealClock(), lease_s=1)


# --- the middleware and the upload ---------------------------------------------------------------------------------
@pytest.fixture
def client(settings) -> APIClient:
    settings.UPLOAD_LARGE_BYTES = 1024  # a test model counts as large
    settings.UPLOAD_LARGE_CONCURRENT = 1
    settings.UPLOAD_LARGE_RETRY_SECONDS = 7
    api = APIClient()
    api.force_authenticate(UserFactory())
    return api


@pytest.fixture
def enqueued() -> Enqueued:
    """The evaluations sent to the test broker (no worker takes them here)."""
    return Enqueued(*EVALUATION)


def post_model(client: APIClient, data: bytes):
    upload = SimpleUploadedFile("model.onnx", data, content_type="application/octet-stream")
    return client.post("/api/v1/submissions/", {"file": upload, "name": "tiny"}, format="multipart")


def test_a_large_upload_beyond_the_limit_is_refused_before_its_body_is_read(client, monkeypatch, enqueued):
    read = []
    monkeypatch.setattr(submissions_service, "submission_create", lambda **kwargs: read.append(kwargs))
    held = slot_acquire("large-uploads", slots=1, lease_s=60)  # another process's upload in progress
    assert held is not None

    response = post_model(client, good_model())

    assert response.status_code == 503 and response["Retry-After"] == "7"
    assert response.json() == {
        "code": "uploads_busy",
        "message": "Too many large uploads are in progress; try again in 7 seconds.",
        "retry_after_s": 7,
    }
    assert read == [] and not Submission.objects.exists() and enqueued == []
    slot_release(held)


def test_a_large_upload_is_checked_where_it_was_streamed_and_gives_its_slot_back(
    client, settings, tmp_path, monkeypatch, enqueued
):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every upload streams to a temporary file, as a large one does
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    (tmp_path / "uploads").mkdir()
    checked = []
    check = submissions_service.check_submission
    monkeypatch.setattr(submissions_service, "check_submission", lambda path, limits: checked.append(path) or
                        check(path, limits))  # fmt: skip
    data = good_model()

    response = post_model(client, data)

    assert response.status_code == 201, response.json()
    assert [path.parent for path in checked] == [tmp_path / "uploads"]  # Django's own temporary file, not a copy
    assert list((tmp_path / "uploads").iterdir()) == []  # moved into storage: nothing left behind
    submission = Submission.objects.get()
    stored = Path(settings.MEDIA_ROOT) / submission.file.name
    assert stored.read_bytes() == data and submission.sha256 == hashlib.sha256(data).hexdigest()
    assert enqueued == [(submission.pk, None)]  # committed, then queued for its evaluation
    assert slot_acquire("large-uploads", slots=1, lease_s=60) is not None  # the upload gave its slot back
