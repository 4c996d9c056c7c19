"""The server refuses clips with too little speech (``audio_no_speech``) below ``MIN_SPEECH_RATIO``, keeps
its other checks, and the record page carries the same threshold for the browser's check."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from django.core.files.uploadedfile import SimpleUploadedFile

from contributors.audio import ClipLimits, estimate_speech
from contributors.models import Clip
from tests.factories import near_silence, speechlike, wav_bytes

pytestmark = pytest.mark.django_db
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "speechocean762-train"


def upload(api, prompt_id, data: bytes):
    return api.post(
        "/api/v1/clips/",
        {"prompt": prompt_id, "audio": SimpleUploadedFile("clip.wav", data, content_type="audio/wav")},
        format="multipart",
    )


def room_noise(seconds: float = 3.5, dbfs: float = -40.0) -> np.ndarray:
    rng = np.random.default_rng(2)
    t = np.arange(int(seconds * 16_000)) / 16_000
    noise = rng.standard_normal(t.size) + 3 * np.sin(2 * np.pi * 50 * t)
    return (noise * 10 ** (dbfs / 20) / np.sqrt(np.mean(noise**2))).astype(np.float32)


def tone(seconds: float = 3.5, dbfs: float = -20.0) -> np.ndarray:
    t = np.arange(int(seconds * 16_000)) / 16_000
    return (np.sqrt(2) * 10 ** (dbfs / 20) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("make", [near_silence, room_noise, tone], ids=["near-silence", "room-noise", "tone"])
def test_no_speech_is_refused_with_a_code_and_the_measured_ratio(api, prompt, make):
    response = upload(api, prompt.pk, wav_bytes(make(), subtype="PCM_16"))

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "audio_no_speech"
    assert "sounds like speech" in body["message"] and "10%" in body["message"]
    assert Clip.objects.count() == 0


def test_the_issues_near_silent_take_measures_as_described():
    samples = near_silence()
    assert 20 * np.log10(np.sqrt(np.mean(samples**2))) == pytest.approx(-54, abs=0.1)
    assert estimate_speech(samples).speech_ratio < ClipLimits().min_speech_ratio


def test_silence_keeps_its_own_code(api, prompt):
    response = upload(api, prompt.pk, wav_bytes(np.zeros(32_000, np.float32), subtype="PCM_16"))
    assert response.json()["code"] == "audio_silent"


def test_speech_passes(api, prompt):
    assert upload(api, prompt.pk, wav_bytes(speechlike(2.0))).status_code == 201


def test_the_threshold_comes_from_settings(api, prompt, settings):
    settings.CLIP_LIMITS = {**settings.CLIP_LIMITS, "MIN_SPEECH_RATIO": 0.0}
    assert upload(api, prompt.pk, wav_bytes(near_silence(), subtype="PCM_16")).status_code == 201


def test_real_readings_pass():
    """A sample of the measured sources (benchmarks/speech_ratio.py measures them all)."""
    files = sorted((CORPUS / "audio").glob("*.flac"))[::100] if CORPUS.exists() else []
    readings = [sf.read(f, dtype="float32") for f in files]
    if shutil.which("espeak-ng"):
        out = subprocess.run(["espeak-ng", "--stdout", "Yes."], check=True, capture_output=True).stdout
        speech, rate = sf.read(io.BytesIO(out), dtype="float32")
        silence = np.zeros(rate // 2, np.float32)
        readings.append((np.concatenate([silence, speech, silence]), rate))
    if not readings:
        pytest.skip("neither the speechocean762 half nor espeak-ng is here")
    limit = ClipLimits().min_speech_ratio
    for samples, rate in readings:
        assert estimate_speech(samples, sample_rate=rate).speech_ratio >= limit


def test_the_record_page_carries_the_threshold(client, contributor):
    client.force_login(contributor.user)
    page = client.get("/record/").content.decode()
    assert 'data-min-speech-ratio="0.1"' in page
