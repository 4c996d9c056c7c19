"""POST /api/v1/clips/ and friends, through the HTTP API, including every bad input the issue names."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from contributors.models import Clip, ClipStatus, Vote
from tests.factories import ContributorFactory, PromptFactory, speechlike, wav_bytes

pytestmark = pytest.mark.django_db


def upload(api: APIClient, prompt_id, data: bytes, name: str = "clip.wav"):
    return api.post(
        "/api/v1/clips/",
        {"prompt": prompt_id, "audio": SimpleUploadedFile(name, data, content_type="audio/wav")},
        format="multipart",
    )


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_nothing_stored(settings) -> None:
    assert Clip.objects.count() == 0
    assert stored_files(settings) == []


def test_valid_upload_is_stored_as_16k_mono_flac(api, prompt, settings):
    response = upload(api, prompt.pk, wav_bytes(speechlike(2.5)))

    assert response.status_code == 201, response.json()
    body = response.json()
    clip = Clip.objects.get(pk=body["id"])
    assert clip.status == ClipStatus.PENDING
    assert clip.audio.name == f"clips/{clip.sha256[:2]}/{clip.sha256}.flac"
    info = sf.info(Path(settings.MEDIA_ROOT) / clip.audio.name)
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", 16000, 1)
    assert clip.duration_s == pytest.approx(2.5, abs=0.01)
    assert body["audio_url"] == f"/api/v1/clips/{clip.pk}/audio"


@pytest.mark.parametrize(
    ("rate", "channels", "fmt", "subtype"),
    [
        (8000, 1, "WAV", "PCM_16"),
        (48000, 2, "WAV", "PCM_16"),
        (44100, 1, "WAV", "FLOAT"),
        (22050, 1, "FLAC", "PCM_16"),
        (48000, 1, "FLAC", "PCM_24"),
        (48000, 1, "WAV", "PCM_24"),
    ],
)
def test_formats_and_rates_are_accepted_and_normalised(api, prompt, settings, rate, channels, fmt, subtype):
    data = wav_bytes(speechlike(2.0, rate=rate, channels=channels), rate=rate, fmt=fmt, subtype=subtype)
    response = upload(api, prompt.pk, data)

    assert response.status_code == 201, response.json()
    clip = Clip.objects.get()
    assert (clip.original_sample_rate, clip.original_channels) == (rate, channels)
    assert clip.original_format.startswith(fmt)
    samples, stored_rate = sf.read(Path(settings.MEDIA_ROOT) / clip.audio.name)
    assert stored_rate == 16000
    assert samples.ndim == 1
    assert len(samples) / 16000 == pytest.approx(2.0, abs=0.05)


def with_sample(samples: np.ndarray, value: float) -> np.ndarray:
    """The samples with one of them, mid-clip, set to ``value``."""
    samples = samples.copy()
    samples[len(samples) // 2] = value
    return samples


def flac_of_unknown_length() -> bytes:
    """A FLAC as an encoder writing to a pipe leaves it: STREAMINFO's 36-bit sample count is 0."""
    buffer = io.BytesIO()
    sf.write(buffer, speechlike(2.0), 16_000, format="FLAC", subtype="PCM_16")
    data = bytearray(buffer.getvalue())
    fields = int.from_bytes(data[18:26], "big")  # rate, channels, bits per sample, then the count
    data[18:26] = (fields & ~((1 << 36) - 1)).to_bytes(8, "big")
    return bytes(data)


def truncated_wav_header() -> bytes:
    return wav_bytes(speechlike(2.0))[:30]


@pytest.mark.parametrize(
    ("make_data", "code"),
    [
        (lambda: b"", "audio_empty"),
        (lambda: b"This is a text file, not a recording.\n" * 20, "audio_undecodable"),
        (truncated_wav_header, "audio_undecodable"),
        (lambda: wav_bytes(speechlike(0.2)), "audio_too_short"),
        (lambda: wav_bytes(speechlike(60.0)), "audio_too_long"),
        (lambda: wav_bytes(np.zeros(32000, dtype=np.float32), subtype="PCM_16"), "audio_silent"),
        (lambda: wav_bytes(np.clip(speechlike(2.0) * 40, -1, 1), subtype="PCM_16"), "audio_clipped"),
        (lambda: wav_bytes(speechlike(2.0, rate=4000), rate=4000), "audio_sample_rate_unsupported"),
        (lambda: wav_bytes(speechlike(2.0, rate=96000), rate=96000), "audio_sample_rate_unsupported"),
        (lambda: wav_bytes(with_sample(speechlike(2.0), np.inf), subtype="FLOAT"), "audio_not_finite"),
        (lambda: wav_bytes(with_sample(speechlike(2.0), -np.inf), subtype="DOUBLE"), "audio_not_finite"),
        (lambda: wav_bytes(with_sample(speechlike(2.0), np.nan), subtype="FLOAT"), "audio_not_finite"),
        (flac_of_unknown_length, "audio_length_unknown"),
    ],
    ids=[
        "empty",
        "text-as-wav",
        "truncated-header",
        "0.2s",
        "60s",
        "silence",
        "clipped",
        "4kHz",
        "96kHz",
        "float-inf",
        "double-minus-inf",
        "float-nan",
        "flac-length-unknown",
    ],
)
def test_bad_audio_gets_a_400_with_a_stable_code_and_stores_nothing(api, prompt, settings, make_data, code):
    response = upload(api, prompt.pk, make_data())

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    assert_nothing_stored(settings)


def test_a_take_recorded_as_another_speaker_is_refused_and_ones_own_is_stored(api, contributor, prompt, settings):
    # The recording page names the speaker it was opened as; another account logged in since must not get the take.
    other = ContributorFactory()
    form = {"prompt": prompt.pk, "speaker": other.speaker_id}
    form["audio"] = SimpleUploadedFile("clip.wav", wav_bytes(speechlike()), content_type="audio/wav")
    response = api.post("/api/v1/clips/", form, format="multipart")

    assert response.status_code == 409
    assert response.json()["code"] == "speaker_changed"
    assert_nothing_stored(settings)

    form = {"prompt": prompt.pk, "speaker": contributor.speaker_id}
    form["audio"] = SimpleUploadedFile("clip.wav", wav_bytes(speechlike()), content_type="audio/wav")
    assert api.post("/api/v1/clips/", form, format="multipart").status_code == 201
    assert Clip.objects.get().contributor == contributor


def test_missing_audio_field_is_a_400(api, prompt, settings):
    response = api.post("/api/v1/clips/", {"prompt": prompt.pk}, format="multipart")

    assert response.status_code == 400
    assert response.json()["code"] == "audio_missing"


@pytest.mark.parametrize("prompt_id", ["999999", "abc", "-1"])
def test_unknown_prompt_is_a_400(api, settings, prompt_id):
    response = upload(api, prompt_id, wav_bytes(speechlike()))

    assert response.status_code == 400
    assert response.json()["code"] == "prompt_unknown"
    assert_nothing_stored(settings)


def test_inactive_prompt_is_refused(api, settings):
    prompt = PromptFactory(is_active=False)
    response = upload(api, prompt.pk, wav_bytes(speechlike()))

    assert response.status_code == 400
    assert response.json()["code"] == "prompt_unknown"


def test_no_login_is_a_401(prompt, settings):
    response = upload(APIClient(), prompt.pk, wav_bytes(speechlike()))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert_nothing_stored(settings)


def test_without_cc0_consent_nothing_is_recorded(prompt, settings):
    client = APIClient()
    client.force_authenticate(ContributorFactory(cc0_consent_at=None).user)
    response = upload(client, prompt.pk, wav_bytes(speechlike()))

    assert response.status_code == 403
    assert response.json()["code"] == "consent_required"
    assert_nothing_stored(settings)


def test_the_same_upload_twice_is_idempotent(api, prompt, settings):
    data = wav_bytes(speechlike(seed=3))
    first = upload(api, prompt.pk, data)
    second = upload(api, prompt.pk, data)

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert Clip.objects.count() == 1
    assert len(stored_files(settings)) == 1


def test_the_same_recording_for_another_prompt_is_a_409(api, prompt, settings):
    data = wav_bytes(speechlike(seed=4))
    assert upload(api, prompt.pk, data).status_code == 201

    response = upload(api, PromptFactory().pk, data)

    assert response.status_code == 409
    assert response.json()["code"] == "audio_duplicate"
    assert Clip.objects.count() == 1
    assert len(stored_files(settings)) == 1


def test_the_same_recording_by_another_contributor_is_a_409(api, prompt):
    data = wav_bytes(speechlike(seed=5))
    assert upload(api, prompt.pk, data).status_code == 201
    other = APIClient()
    other.force_authenticate(ContributorFactory().user)

    response = upload(other, prompt.pk, data)

    assert response.status_code == 409
    assert response.json()["code"] == "audio_duplicate"


def test_a_50_mb_body_is_a_413_before_anything_is_read(api, prompt, settings):
    response = upload(api, prompt.pk, b"\0" * (50 * 1024 * 1024))

    assert response.status_code == 413
    assert response.json()["code"] == "upload_too_large"
    assert_nothing_stored(settings)


def test_re_recording_replaces_the_pending_clip_and_its_file(api, prompt, settings, django_capture_on_commit_callbacks):
    first = upload(api, prompt.pk, wav_bytes(speechlike(seed=1)))
    old_name = Clip.objects.get().audio.name

    with django_capture_on_commit_callbacks(execute=True):
        second = upload(api, prompt.pk, wav_bytes(speechlike(seed=2)))

    assert second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    clip = Clip.objects.get()
    assert clip.audio.name != old_name
    assert [p.relative_to(settings.MEDIA_ROOT).as_posix() for p in stored_files(settings)] == [clip.audio.name]


def test_a_clip_with_votes_cannot_be_replaced(api, contributor, prompt):
    upload(api, prompt.pk, wav_bytes(speechlike(seed=1)))
    Vote.objects.create(clip=Clip.objects.get(), voter=ContributorFactory(), verdict="valid")

    response = upload(api, prompt.pk, wav_bytes(speechlike(seed=2)))

    assert response.status_code == 409
    assert response.json()["code"] == "clip_under_review"


def test_a_validated_clip_cannot_be_replaced(api, prompt):
    upload(api, prompt.pk, wav_bytes(speechlike(seed=1)))
    Clip.objects.update(status=ClipStatus.VALID)

    response = upload(api, prompt.pk, wav_bytes(speechlike(seed=2)))

    assert response.status_code == 409
    assert response.json()["code"] == "clip_final"


def test_mine_lists_only_my_clips(api, prompt):
    upload(api, prompt.pk, wav_bytes(speechlike(seed=1)))
    other = APIClient()
    other.force_authenticate(ContributorFactory().user)
    upload(other, prompt.pk, wav_bytes(speechlike(seed=2)))

    response = api.get("/api/v1/clips/mine")

    assert response.status_code == 200
    assert response.json()["count"] == 1 and len(response.json()["results"]) == 1


def test_audio_is_served_to_its_owner_only(api, prompt):
    clip_id = upload(api, prompt.pk, wav_bytes(speechlike(seed=1))).json()["id"]
    other = APIClient()
    other.force_authenticate(ContributorFactory().user)

    mine = api.get(f"/api/v1/clips/{clip_id}/audio")
    theirs = other.get(f"/api/v1/clips/{clip_id}/audio")

    assert mine.status_code == 200
    assert mine["Content-Type"] == "audio/flac" and mine["Accept-Ranges"] == "bytes"
    assert sf.info(io.BytesIO(mine.content)).samplerate == 16000
    assert theirs.status_code == 404
    assert theirs.json()["code"] == "clip_unknown"
    assert other.get(f"/api/v1/clips/{clip_id}/audio", HTTP_RANGE="bytes=0-9").status_code == 404


def test_audio_answers_byte_ranges_so_players_can_seek(api, prompt):
    clip_id = upload(api, prompt.pk, wav_bytes(speechlike(seed=2))).json()["id"]
    whole = api.get(f"/api/v1/clips/{clip_id}/audio").content

    part = api.get(f"/api/v1/clips/{clip_id}/audio", HTTP_RANGE="bytes=100-199")
    tail = api.get(f"/api/v1/clips/{clip_id}/audio", HTTP_RANGE="bytes=-10")

    assert part.status_code == 206 and part.content == whole[100:200]
    assert part["Content-Range"] == f"bytes 100-199/{len(whole)}"
    assert tail.content == whole[-10:]
    for bad in [f"bytes={len(whole)}-", "bytes=9-5", "bytes=" + "9" * 5000 + "-"]:
        refused = api.get(f"/api/v1/clips/{clip_id}/audio", HTTP_RANGE=bad)
        assert refused.status_code == 416, bad
        assert refused.json()["code"] in ("range_invalid", "range_not_satisfiable")
        assert refused["Content-Range"] == f"bytes */{len(whole)}"
    for ignored in ["bytes=0-1,5-6", "items=0-5"]:  # several ranges, another unit: the whole clip
        response = api.get(f"/api/v1/clips/{clip_id}/audio", HTTP_RANGE=ignored)
        assert response.status_code == 200 and response.content == whole, ignored
    rest = api.get(f"/api/v1/clips/{clip_id}/audio", HTTP_RANGE="bytes=100-" + "9" * 5000)
    assert rest.status_code == 206 and rest.content == whole[100:]


def test_unknown_api_path_is_a_json_404(api):
    response = api.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
