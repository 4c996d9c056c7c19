"""The contributor's and the trustee's flows in a real Chromium, against the live test server.

Chromium's fake microphone plays a WAV file, re-read each time a page opens the microphone; the recorder
opens it once per take, so writing the WAV of the prompt on screen before each take feeds every
recording the espeak-ng reading of its own sentence.
"""

from __future__ import annotations

import io
import itertools
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from django.core.files.storage import default_storage
from scipy import signal

from contributors.models import Clip, ClipSkip, ClipStatus, Contributor, Prompt, Vote
from contributors.services.clips import clip_submit
from contributors.services.prompts import prompt_create
from tests.factories import ContributorFactory, FounderFactory, PromptFactory, speechlike, wav_bytes
from tests.frontend.conftest import screenshot

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things.",
    "She sells sea shells by the sea shore every summer.",
    "A large yellow boat drifted slowly toward the harbor.",
    "My grandmother keeps seven cats in her kitchen.",
]
PASSWORD = "a-long-browser-password"
TAIL_S = 0.3  # the recorder's tail after Stop


def fake_microphone(tmp_path: Path) -> tuple[Path, list[str]]:
    mic = tmp_path / "microphone.wav"
    flags = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}%noloop",
    ]
    return mic, flags


def sign_up(page, base: str, username: str) -> None:
    page.goto(f"{base}/signup/")
    screenshot(page, "signup")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.check("#id_cc0_consent")
    page.select_option("#id_gender", "female")
    page.fill("#id_accent", "Scottish")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/record/")


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    screenshot(page, "login")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/record/")


def record_take(page, mic: Path, wav: Path) -> None:
    shutil.copyfile(wav, mic)
    duration = sf.info(wav).duration
    page.click("#record-button")
    # Stopped by a timer in the page, started as the recording starts: a second Playwright click arrived up to
    # 0.8 s late on a loaded machine (its round trips and actionability checks), and the take ran that much long.
    page.evaluate(STOP_SOON_AFTER_RECORDING_STARTS, round(max(duration - TAIL_S - 0.05, 0.1) * 1000))
    page.wait_for_selector("#recorder[data-state=recorded]", timeout=10_000)


def test_a_contributor_signs_up_records_five_prompts_and_a_trustee_validates_them(live_server, launch, speak, tmp_path):
    for text in SENTENCES:
        prompt_create(text=text)
    wav_for = {
        text: speak(text, voice)
        for text, voice in zip(SENTENCES, ["en-us+f2", "en-us+m3", "en+f3", "en-us+m1", "en-us+f4"], strict=True)
    }
    mic, flags = fake_microphone(tmp_path)
    browser = launch(*flags)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    base = live_server.url

    page.goto(f"{base}/")
    screenshot(page, "home")
    sign_up(page, base, "reader")
    page.wait_for_selector("#recorder[data-state=idle]")
    screenshot(page, "record")

    recorded: dict[str, Path] = {}
    for step in range(5):
        text = page.inner_text("#prompt-text").strip()
        record_take(page, mic, wav_for[text])
        recorded[text] = wav_for[text]
        if step == 0:  # play the first take back
            page.click("#play-button")
            page.wait_for_selector("#recorder[data-played=true]", timeout=15_000)
        if step < 4:
            page.keyboard.press("n")  # next prompt, by shortcut
    page.keyboard.press("b")  # back to the fourth prompt and record it again
    text = page.inner_text("#prompt-text").strip()
    record_take(page, mic, wav_for[text])
    screenshot(page, "record-takes")

    page.click("#submit-button")
    page.wait_for_selector("#recorder[data-submitted='5']", timeout=30_000)
    page.wait_for_selector("#recorder[data-state=finished]", timeout=10_000)

    contributor = Contributor.objects.get(user__username="reader")
    assert (contributor.gender, contributor.accent, contributor.has_consented) == ("female", "Scottish", True)
    clips = list(Clip.objects.filter(contributor=contributor).select_related("prompt"))
    assert len(clips) == 5
    for clip in clips:
        expected = sf.info(recorded[clip.prompt.text]).duration
        # The take is as long as the time between the clicks, which a loaded machine stretches by a few tenths.
        assert clip.duration_s == pytest.approx(expected, abs=0.6), clip.prompt.text
        assert clip.rms_dbfs > -45  # speech, not silence
        with default_storage.open(clip.audio.name, "rb") as handle:
            info = sf.info(io.BytesIO(handle.read()))
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", 16_000, 1)
        # Sent at the rate the (fake) device captured, resampled on the server.
        assert clip.original_format == "WAV/PCM_16" and clip.original_sample_rate in (44_100, 48_000)

    page.goto(f"{base}/dashboard/")
    page.wait_for_selector("table.clips")
    assert page.locator("table.clips tbody tr").count() == 5
    screenshot(page, "dashboard")
    page.goto(f"{base}/profile/")
    screenshot(page, "profile")
    page.goto(f"{base}/validate/")
    screenshot(page, "validate-not-trustee")

    # A founding trustee with quota validates the five clips through the page.
    trustee = FounderFactory(user__username="trustee", user__password=PASSWORD)
    for _ in range(5):
        clip_submit(contributor=trustee, prompt_id=PromptFactory().pk, data=wav_bytes(speechlike(seed=_ + 50)))
    other = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(other, base, "trustee")
    other.goto(f"{base}/validate/")
    for round_ in range(5):
        other.wait_for_selector("#validator[data-state=ready]", timeout=10_000)
        assert other.is_disabled("#valid-button")  # not before the clip has played to the end
        if round_ == 0:
            screenshot(other, "validate")
        clip_id = int(other.get_attribute("#validator", "data-clip-id"))
        other.keyboard.press(" ")  # play, by shortcut
        other.wait_for_selector("#validator[data-state=listened]", timeout=20_000)
        other.click("#valid-button")
        other.wait_for_function(
            f"() => document.querySelector('#validator').dataset.clipId !== '{clip_id}' "
            "|| document.querySelector('#validator').dataset.state === 'empty'",
            timeout=10_000,
        )
    other.wait_for_selector("#validator[data-state=empty]", timeout=10_000)

    assert Vote.objects.filter(voter=trustee, verdict="valid").count() == 5
    for clip in Clip.objects.filter(contributor=contributor):
        assert (clip.votes_counted, clip.status) == (1, ClipStatus.PENDING)  # counted by the engine; six make valid
        assert clip.score == pytest.approx(0.2065, abs=1e-4)


def test_a_denied_microphone_shows_its_message(live_server, launch):
    PromptFactory()
    ContributorFactory(user__username="nomic", user__password=PASSWORD)
    browser = launch("--use-fake-device-for-media-stream", "--deny-permission-prompts")
    page = browser.new_page()
    log_in(page, live_server.url, "nomic")
    page.wait_for_selector("#recorder[data-state=idle]")

    page.click("#record-button")

    page.wait_for_selector("#recorder[data-mic-error=denied]", timeout=10_000)
    assert "Microphone access was denied" in page.inner_text("#alert")
    screenshot(page, "record-denied")
    assert not Clip.objects.exists()


def test_without_consent_the_record_page_sends_you_to_the_profile(live_server, launch):
    ContributorFactory(user__username="noconsent", user__password=PASSWORD, cc0_consent_at=None)
    page = launch().new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "noconsent")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")

    page.wait_for_url(f"{live_server.url}/profile/?next=/record/")
    assert "CC0" in page.inner_text("main")
    page.check("#id_cc0_consent")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/record/")


def test_an_upload_whose_answer_is_lost_is_retried_without_a_duplicate(live_server, launch, speak, tmp_path):
    prompt, _ = prompt_create(text=SENTENCES[0])
    mic, flags = fake_microphone(tmp_path)
    ContributorFactory(user__username="flaky", user__password=PASSWORD)
    page = launch(*flags).new_page()
    log_in(page, live_server.url, "flaky")
    page.wait_for_selector("#recorder[data-state=idle]")
    record_take(page, mic, speak(SENTENCES[0]))
    attempts = []

    def lose_first_answer(route):
        attempts.append(route.request.method)
        if len(attempts) == 1:
            route.fetch()  # the server receives and stores the clip...
            route.abort("connectionreset")  # ...but its answer never reaches the browser
        else:
            route.continue_()

    page.route("**/api/v1/clips/", lose_first_answer)
    page.click("#submit-button")

    page.wait_for_selector("#recorder[data-submitted='1']", timeout=30_000)
    assert attempts == ["POST", "POST"]
    assert Clip.objects.filter(prompt=prompt).count() == 1


def _spectrum(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch's power spectral density in 2 Hz bins."""
    return signal.welch(samples, fs=rate, nperseg=rate // 2)


def test_the_recorder_uploads_at_the_device_rate_and_the_server_filters_to_16_khz(live_server, launch, speak, tmp_path):
    """Speech with a 12 kHz tone under it, through the real page. Decimating 48 -> 16 kHz (what Chromium's
    AudioBuffer resampling amounts to) folds the tone to a 4 kHz line at full strength, forever; soxr's
    filter on the server removes it, and the stored clip's spectrum is soxr's resampling of the source."""
    prompt, _ = prompt_create(text=SENTENCES[1])
    mic, flags = fake_microphone(tmp_path)
    ContributorFactory(user__username="hifi", user__password=PASSWORD)
    speech, rate = sf.read(speak(SENTENCES[1]), dtype="float64")
    assert rate == 48_000
    # The speech is notched at 3.9-4.1 kHz, so that the 4 kHz line can only hold the tone's alias: the fake
    # microphone loops the file from wherever it is when the take starts, and a harmonic of the speech near
    # 4 kHz once put the line at -58.9 dB on a loaded run, with no alias in it.
    spectrum = np.fft.rfft(speech)
    spectrum[np.abs(np.fft.rfftfreq(len(speech), 1 / rate) - 4_000) <= 100] = 0
    speech = np.fft.irfft(spectrum, len(speech))
    tone_amplitude = 0.18
    tone = tone_amplitude * np.sin(2 * np.pi * 12_000 * np.arange(len(speech)) / rate)
    source = 0.6 * speech + tone
    source_wav = tmp_path / "speech-and-tone.wav"
    sf.write(source_wav, source, rate, subtype="PCM_16")
    page = launch(*flags).new_page()
    log_in(page, live_server.url, "hifi")
    page.wait_for_selector("#recorder[data-state=idle]")
    record_take(page, mic, source_wav)
    page.click("#submit-button")
    page.wait_for_selector("#recorder[data-submitted='1']", timeout=30_000)

    clip = Clip.objects.get(prompt=prompt)
    with default_storage.open(clip.audio.name, "rb") as handle:
        stored, stored_rate = sf.read(io.BytesIO(handle.read()), dtype="float64")
    assert stored_rate == 16_000
    assert clip.original_sample_rate > 16_000  # the page sent what the device captured

    # The 4 kHz alias: the line's power above the speech around it, against the tone's power.
    frequencies, power = _spectrum(stored, 16_000)
    df = frequencies[1] - frequencies[0]
    line = np.abs(frequencies - 4_000) <= 4
    around = (np.abs(frequencies - 4_000) > 20) & (np.abs(frequencies - 4_000) <= 200)
    excess = max(power[line].sum() * df - np.median(power[around]) * df * line.sum(), 0.0)
    tone_power = tone_amplitude**2 / 2
    assert excess <= tone_power * 1e-6, f"the alias is {10 * np.log10(excess / tone_power):.1f} dB of the tone"

    # The rest of the spectrum: third-octave bands from 100 Hz to 7 kHz match soxr's resampling of the
    # source within 3 dB, in every band within 50 dB of the loudest (levels normalised: no gain is assumed).
    reference = soxr.resample(source, rate, 16_000)
    ref_frequencies, ref_power = _spectrum(reference, 16_000)
    edges = 100 * 2 ** (np.arange(0, 19) / 3)
    edges = edges[edges <= 7_000]

    def bands(f: np.ndarray, p: np.ndarray) -> np.ndarray:
        levels = np.array([p[(f >= lo) & (f < hi)].sum() for lo, hi in itertools.pairwise(edges)])
        return 10 * np.log10(levels / levels.sum())

    stored_bands, reference_bands = bands(frequencies, power), bands(ref_frequencies, ref_power)
    loud = reference_bands >= reference_bands.max() - 50
    assert np.abs(stored_bands - reference_bands)[loud].max() < 3.0, (stored_bands, reference_bands)


# Resolves once the page has been told to stop: ``delay`` ms after #recorder reaches "recording", by a click on the
# record button from the page's own timer.
STOP_SOON_AFTER_RECORDING_STARTS = """(delay) => new Promise(resolve => {
    const recorder = document.getElementById('recorder');
    const stopLater = () => {
        if (recorder.dataset.state !== 'recording') return false;
        setTimeout(() => { document.getElementById('record-button').click(); resolve(); }, delay);
        return true;
    };
    if (!stopLater()) {
        const watch = new MutationObserver(() => { if (stopLater()) watch.disconnect(); });
        watch.observe(recorder, {attributes: true, attributeFilter: ['data-state']});
    }
})"""


def test_a_take_the_server_refuses_does_not_block_the_rest_of_the_set(live_server, launch, speak, tmp_path):
    """Good, clipped, good, Submit, while other readers' reports hold the third sentence: the first take is stored,
    the clipped one is named with the server's reason and shown for a retake, the held sentence leaves the set for
    a fresh one, and the set finishes once the clipped one is recorded again. Takes shorter than the server's
    minimum are caught on the page, and leaving with unsent takes asks first."""
    for text in [*SENTENCES, "The old clock in the hall struck twelve."]:  # a set of five, and one to spare
        prompt_create(text=text)
    mic, flags = fake_microphone(tmp_path)
    volunteer = ContributorFactory(user__username="setter", user__password=PASSWORD)
    page = launch(*flags).new_page()
    log_in(page, live_server.url, "setter")
    page.wait_for_selector("#recorder[data-state=idle]")

    # Too short for the server (1 s): the page says so at once and keeps nothing.
    short = tmp_path / "short.wav"
    sf.write(short, speechlike(seconds=0.4, rate=48_000), 48_000, subtype="PCM_16")
    shutil.copyfile(short, mic)
    page.click("#record-button")
    # Stopped from inside the page 0.2 s after the recording starts: a second Playwright click could arrive more
    # than a second later on a loaded machine (its round trips and actionability checks), and the take would pass.
    page.evaluate(STOP_SOON_AFTER_RECORDING_STARTS, 200)
    page.wait_for_function("() => document.getElementById('alert').textContent.includes('at least 1 s')")
    assert page.get_attribute("#recorder", "data-state") == "idle"

    read = []
    clipped_text = None
    for step in range(3):
        text = page.inner_text("#prompt-text").strip()
        read.append(text)
        wav = speak(text)
        if step == 1:  # distorted: flat-topped at full scale, which the server refuses
            clipped_text = text
            samples, rate = sf.read(wav, dtype="float64")
            wav = tmp_path / "clipped.wav"
            sf.write(wav, np.clip(samples * 40, -1, 1), rate, subtype="PCM_16")
        record_take(page, mic, wav)
        if step < 2:
            page.keyboard.press("n")

    # Three unsent takes: leaving the page asks first (the page cancels beforeunload; the browser asks).
    leave = "() => { const e = new Event('beforeunload', {cancelable: true}); return !dispatchEvent(e) }"
    assert page.evaluate(leave) is True
    Prompt.objects.filter(text=read[2]).update(held_for_review=True)  # three readers reported it meanwhile

    page.click("#submit-button")
    page.wait_for_selector("#recorder[data-state=upload-error]", timeout=30_000)
    assert [c.prompt.text for c in Clip.objects.filter(contributor=volunteer)] == [read[0]]
    status = page.inner_text("#status").strip()
    assert status.startswith("Submitted 1 recording.") and f"“{read[2]}” was reported by other readers" in status
    alert = page.inner_text("#alert")
    assert clipped_text in alert and "clipped" in alert and "Uploading" not in status
    assert page.inner_text("#prompt-text").strip() == clipped_text  # the refused sentence is on screen
    assert "not accepted" in page.inner_text("#take-info")
    page.keyboard.press("n")  # where the held sentence was, a fresh one waits to be read
    assert page.inner_text("#prompt-text").strip() not in read
    page.keyboard.press("b")

    record_take(page, mic, speak(clipped_text))
    page.click("#submit-button")
    page.wait_for_selector("#recorder[data-submitted='2']", timeout=30_000)
    assert sorted(c.prompt.text for c in Clip.objects.filter(contributor=volunteer)) == sorted(read[:2])
    assert page.evaluate(leave) is False  # nothing left unsent: leave freely


def test_takes_outlive_a_logout_and_are_never_filed_under_the_next_account(live_server, launch, speak, tmp_path):
    """A take recorded as ``first``; in another tab the session ends, then ``second`` logs in. Submit in the first
    tab sends nothing, says why with a link to log in, and keeps the take; once ``first`` is back, it goes up under
    ``first``."""
    prompt_create(text=SENTENCES[0])
    mic, flags = fake_microphone(tmp_path)
    first = ContributorFactory(user__username="first", user__password=PASSWORD)
    second = ContributorFactory(user__username="second", user__password=PASSWORD)
    context = launch(*flags).new_context()  # one browser profile: the tabs share the session cookie
    page, other = context.new_page(), context.new_page()
    log_in(page, live_server.url, "first")
    page.wait_for_selector("#recorder[data-state=idle]")
    record_take(page, mic, speak(SENTENCES[0]))

    def submit_is_refused(why: str) -> None:
        page.click("#submit-button")
        page.wait_for_selector("#recorder[data-state=upload-error]", timeout=30_000)
        alert = page.inner_text("#alert")
        assert why in alert and "1 recording is kept" in alert, alert
        assert page.get_attribute("#alert a", "href") == "/login/?next=/record/"
        assert not Clip.objects.exists()

    def log_out_in_the_other_tab() -> None:
        other.goto(f"{live_server.url}/")
        other.click("text=Log out")
        other.wait_for_url(f"{live_server.url}/")

    log_out_in_the_other_tab()
    submit_is_refused("credentials were not provided")
    log_in(other, live_server.url, "second")
    submit_is_refused("another account was logged in")

    log_out_in_the_other_tab()
    log_in(other, live_server.url, "first")
    page.click("#submit-button")
    page.wait_for_selector("#recorder[data-submitted='1']", timeout=30_000)
    assert [c.prompt.text for c in Clip.objects.filter(contributor=first)] == [SENTENCES[0]]
    assert not Clip.objects.filter(contributor=second).exists()


def test_seeking_to_the_end_of_a_clip_does_not_unlock_valid(live_server, launch):
    trustee = FounderFactory(user__username="hasty", user__password=PASSWORD)
    for seed in range(2):
        clip_submit(contributor=trustee, prompt_id=PromptFactory().pk, data=wav_bytes(speechlike(seed=seed + 70)))
    clip_submit(contributor=ContributorFactory(), prompt_id=PromptFactory().pk, data=wav_bytes(speechlike(seed=80)))
    page = launch("--autoplay-policy=no-user-gesture-required").new_page()
    log_in(page, live_server.url, "hasty")
    page.goto(f"{live_server.url}/validate/")
    page.wait_for_selector("#validator[data-state=ready]", timeout=10_000)
    play_from = """async (start) => {
        const audio = document.getElementById("clip-audio");
        if (audio.readyState < 4) await new Promise((r) => audio.addEventListener("canplaythrough", r, { once: true }));
        // null: the last tenth of a second; a string: that share of the clip; a number: that second.
        const at = typeof start === "string" ? audio.duration * Number(start) : start;
        audio.currentTime = start === null ? audio.duration - 0.1 : at;
        const ended = new Promise((r) => audio.addEventListener("ended", r, { once: true }));
        await audio.play();
        await ended;
    }"""

    page.evaluate(play_from, None)  # jump to the last tenth of a second and let it end
    assert page.evaluate("document.getElementById('clip-audio').played.start(0)") > 1.5  # the seek took
    assert page.is_disabled("#valid-button")
    assert page.get_attribute("#validator", "data-state") == "ready"
    assert "skipping ahead does not count" in page.inner_text("#status")

    page.evaluate(play_from, "0.06")  # from 6 % of the clip to its end: 94 % heard, one short of the rule
    assert page.is_disabled("#valid-button") and "You heard 94\xa0%" in page.inner_text("#status")
    page.evaluate(play_from, 0)  # the start too: the played ranges now cover all of it
    page.wait_for_selector("#validator[data-state=listened]", timeout=10_000)
    assert not page.is_disabled("#valid-button")


def test_invalid_asks_for_a_reason_by_keyboard_and_the_thanks_stays_until_the_next_clip_plays(live_server, launch):
    trustee = FounderFactory(user__username="picky", user__password=PASSWORD)
    clip_submit(contributor=trustee, prompt_id=PromptFactory().pk, data=wav_bytes(speechlike(seed=90)))  # quota 13
    for seed in (91, 92, 93):
        clip_submit(
            contributor=ContributorFactory(), prompt_id=PromptFactory().pk, data=wav_bytes(speechlike(seed=seed))
        )
    page = launch().new_context().new_page()  # a context of its own: a second tab logs out below
    log_in(page, live_server.url, "picky")
    page.goto(f"{live_server.url}/validate/")
    assert page.inner_text("#quota") == "13" and "founding trustee" in page.inner_text("#standing")
    page.wait_for_selector("#validator[data-state=ready]", timeout=10_000)
    first = int(page.get_attribute("#validator", "data-clip-id"))

    page.keyboard.press("i")  # the reasons open, focus on the first
    assert page.is_visible("#invalid-reasons") and page.get_attribute("#invalid-button", "aria-expanded") == "true"
    assert page.evaluate("document.activeElement.dataset.reason") == "wrong_sentence"
    page.keyboard.press("Escape")  # back, nothing cast
    assert page.is_hidden("#invalid-reasons") and not Vote.objects.exists()
    assert page.evaluate("document.activeElement.id") == "invalid-button"  # focus back where it was
    page.keyboard.press("i")  # the shortcut still works with focus on that button
    assert page.is_visible("#invalid-reasons")
    page.keyboard.press("2")  # noise
    page.wait_for_function(f"() => document.querySelector('#validator').dataset.clipId !== '{first}'", timeout=10_000)
    page.wait_for_selector("#validator[data-state=ready]", timeout=10_000)

    vote = Vote.objects.get()
    assert (vote.clip_id, vote.verdict, vote.reason) == (first, "invalid", "noise")
    assert page.inner_text("#quota") == "12"
    time.sleep(1)  # the next instruction does not replace it
    assert page.inner_text("#confirmation") == "Thanks: counted as invalid (noise)."
    assert "Listen to the clip" in page.inner_text("#status")
    page.keyboard.press(" ")  # the next clip plays: the confirmation has done its job
    page.wait_for_function("() => document.querySelector('#confirmation').textContent === ''", timeout=10_000)
    second = int(page.get_attribute("#validator", "data-clip-id"))
    page.focus("#clip-audio")  # a click on the player leaves focus there: the letters still work
    page.keyboard.press("k")
    page.wait_for_function("() => document.querySelector('#confirmation').textContent === 'Skipped.'", timeout=10_000)
    assert ClipSkip.objects.filter(clip_id=second).exists()

    # Logged out in another tab: the next verdict says so, with a way back in, and casts nothing.
    page.wait_for_selector("#validator[data-state=ready]", timeout=10_000)
    other = page.context.new_page()
    other.goto(f"{live_server.url}/validate/")
    other.click("text=Log out")
    other.wait_for_url(f"{live_server.url}/")
    page.keyboard.press("k")
    page.wait_for_selector("#validator[data-state=error]", timeout=10_000)
    assert "credentials were not provided" in page.inner_text("#alert")
    assert page.get_attribute("#alert a", "href") == "/login/?next=%2Fvalidate%2F"
    assert ClipSkip.objects.count() == 1
