"""The recorder's own checks and hardening in a real Chromium: a near-silent take is flagged before upload with
the server's measure and threshold; a double click opens one microphone stream; a worklet that fails to load
leaves no stream open; the speech measure and the WAV encoder agree with the server's."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from benchmarks.speech_ratio import browser_ratio, ratio_of, wav
from contributors.models import Clip
from tests.factories import ContributorFactory, PromptFactory, near_silence, speechlike
from tests.frontend.conftest import screenshot
from tests.frontend.test_browser import PASSWORD, fake_microphone, log_in, record_take

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Every stream the page opens, kept so that the test can see whether its tracks were stopped.
TRACK_STREAMS = """
window.__streams = [];
const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  const stream = await original(constraints);
  window.__streams.push(stream);
  return stream;
};
"""
ALL_ENDED = "() => window.__streams.every((s) => s.getTracks().every((t) => t.readyState === 'ended'))"


def _recorder_page(live_server, launch, tmp_path, username: str, init_script: str = ""):
    PromptFactory.create_batch(2)
    ContributorFactory(user__username=username, user__password=PASSWORD)
    mic, flags = fake_microphone(tmp_path)
    sf.write(mic, speechlike(3.0, rate=48_000), 48_000, subtype="PCM_16")
    page = launch(*flags).new_page()
    if init_script:
        page.add_init_script(init_script)
    log_in(page, live_server.url, username)
    page.wait_for_selector("#recorder[data-state=idle]")
    return page, mic


def test_a_near_silent_take_is_flagged_before_upload(live_server, launch, tmp_path):
    page, mic = _recorder_page(live_server, launch, tmp_path, "whisper")
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/api/v1/clips/" in r.url else None)
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, near_silence(rate=48_000), 48_000, subtype="PCM_16")

    record_take(page, mic, quiet)

    assert page.get_attribute("#recorder", "data-flag") == "no_speech"
    assert "too little speech" in page.inner_text("#take-info")
    assert "Sentence 1: too little speech" in page.inner_text("#alert")
    assert page.is_disabled("#submit-button") and "0 recorded" in page.inner_text("#set-progress")
    screenshot(page, "record-no-speech")
    page.keyboard.press("s")
    assert posts == [] and not Clip.objects.exists()


def test_a_double_click_opens_one_stream_and_stop_closes_it(live_server, launch, tmp_path):
    page, _ = _recorder_page(live_server, launch, tmp_path, "doubler", TRACK_STREAMS)

    page.dblclick("#record-button")
    page.wait_for_selector("#recorder[data-state=recording]", timeout=10_000)
    time.sleep(1.2)
    page.click("#record-button")
    page.wait_for_selector("#recorder[data-state=recorded]", timeout=10_000)

    assert page.evaluate("window.__streams.length") == 1
    assert page.evaluate(ALL_ENDED) is True


def test_a_worklet_that_fails_to_load_leaves_no_stream_open(live_server, launch, tmp_path):
    broken = TRACK_STREAMS + "AudioWorklet.prototype.addModule = () => Promise.reject(new Error('blocked'));"
    page, _ = _recorder_page(live_server, launch, tmp_path, "broken", broken)

    page.click("#record-button")

    page.wait_for_selector("#recorder[data-mic-error=start]", timeout=10_000)
    assert "could not start" in page.inner_text("#alert") and "blocked" in page.inner_text("#alert")
    assert page.evaluate("window.__streams.length") == 1
    assert page.evaluate(ALL_ENDED) is True
    assert not page.is_disabled("#record-button")  # the busy flag was released


def test_the_page_measures_speech_and_encodes_wav_as_the_server_does(live_server, launch, tmp_path):
    page, _ = _recorder_page(live_server, launch, tmp_path, "measurer")
    speech = speechlike(2.0, rate=48_000)
    whistle = speech + 0.18 * np.sin(2 * np.pi * 12_000 * np.arange(speech.size) / 48_000).astype(np.float32)
    takes = {"speech": speech, "near-silence": near_silence(rate=48_000), "speech over a 12 kHz tone": whistle}
    for name, samples in takes.items():
        browser = page.evaluate(
            "async (s) => (await import('/static/frontend/js/speech.js')).speechRatio(Float32Array.from(s), 48000)",
            samples.tolist(),
        )
        assert browser == pytest.approx(browser_ratio(samples, 48_000), abs=1e-3), name  # the same code
        server = ratio_of(wav(samples, 48_000))
        assert browser == pytest.approx(server, abs=0.02), name  # the same measure as the server's

    steps = np.array([0.7, -0.7, 2.6, 1000.4, -1000.6, 32766.6]) / 32767
    encoded = page.evaluate(
        """async (s) => {
          const blob = (await import('/static/frontend/js/wav.js')).encodeWav(Float32Array.from(s), 16000);
          return Array.from(new Int16Array((await blob.arrayBuffer()).slice(44)));
        }""",
        steps.tolist(),
    )
    expected = [1, -1, 3, 1000, -1001, 32767]  # rounded (truncation gave 0, 0, 2, 1000, -1000, 32766)
    assert encoded == expected
