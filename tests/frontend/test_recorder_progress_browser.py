"""The record page in a real Chromium, one volunteer's walk: the level meter in dBFS warns "too quiet" and
"clipping" while recording; a discarded take is gone; a kept take survives a reload (IndexedDB) and is removed
once submitted; the submitted clip's progress through validation is patched in live, up to valid, with the
week's validated seconds."""

from __future__ import annotations

import re
import shutil
import time

import numpy as np
import pytest
import soundfile as sf

from contributors.models import Clip, ClipStatus
from tests.factories import ContributorFactory, FounderFactory, PromptFactory, speechlike, vote_on
from tests.frontend.test_browser import PASSWORD, fake_microphone, log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RATE = 48_000
KEPT = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open("openphone-recorder");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const count = open.result.transaction("takes").objectStore("takes").count();
    count.onsuccess = () => { open.result.close(); resolve(count.result); };
  };
})"""
LEVEL_DB = "() => parseInt(document.getElementById('level-dbfs').textContent.replace('\u2212', '-'), 10)"


def _wav(path, samples):
    sf.write(path, samples, RATE, subtype="PCM_16")
    return path


def _kept(page, expected: int) -> None:
    """Waits for the page's IndexedDB writes (they are not awaited by the recorder) to reach ``expected``."""
    for _ in range(50):
        if page.evaluate(KEPT) == expected:
            return
        time.sleep(0.1)
    assert page.evaluate(KEPT) == expected


def test_meter_warnings_a_take_kept_over_a_reload_and_its_progress_to_valid(live_server, launch, tmp_path, settings):
    settings.PROGRESS_POLL_S = 1
    prompts = PromptFactory.create_batch(3)
    volunteer = ContributorFactory(user__username="keeper", user__password=PASSWORD)
    mic, flags = fake_microphone(tmp_path)
    voice = speechlike(3.0, rate=RATE)  # peaks at -10 dBFS, loudest 85 ms block -17 dBFS RMS: a normal reading
    quiet = _wav(tmp_path / "quiet.wav", voice * 0.03)  # 30 dB down: loudest block -47 dBFS
    loud = _wav(tmp_path / "loud.wav", np.clip(voice * 3.2, -1, 1))  # 0.1 % flat-topped: warned, not refused
    normal = _wav(tmp_path / "normal.wav", voice)
    page = launch(*flags).new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server.url, "keeper")
    page.wait_for_selector("#recorder[data-state=idle]")
    page.wait_for_selector("#progress:not([hidden])")
    assert "This week: 0 s of your speech validated, goal 60 s" in page.inner_text("#week-goal")

    def start(wav):
        shutil.copyfile(wav, mic)
        page.click("#record-button")
        page.wait_for_selector("#recorder[data-state=recording]", timeout=10_000)

    def stop():
        page.click("#record-button")
        page.wait_for_selector("#recorder[data-state=recorded], #recorder[data-state=idle]", timeout=10_000)

    # Too quiet: after two seconds of audio with nothing above -40 dBFS.
    start(quiet)
    page.wait_for_selector("#recorder[data-level=quiet]", timeout=10_000)
    assert "Too quiet" in page.inner_text("#level-warning")
    assert -45 < page.evaluate(LEVEL_DB) < -36  # its peaks, -40 dBFS, held for a second
    page.screenshot(path=str(tmp_path / "record-too-quiet.png"))
    stop()
    assert page.inner_text("#level-warning") == ""  # the live warning ends with the take

    # A normal voice: no warning, and the bar shows its peaks near -10 dBFS (the old bar showed 16-20 %).
    start(normal)
    page.wait_for_function(f"() => ({LEVEL_DB})() > -16", timeout=10_000)
    page.wait_for_function("() => parseFloat(document.getElementById('level').style.width) >= 75", timeout=5_000)
    time.sleep(2.3)
    assert page.get_attribute("#recorder", "data-level") is None
    assert re.fullmatch(r"0:0[23] / 0:15", page.inner_text("#timer"))  # audio time, the take's limit
    stop()
    first_text, first_take = page.inner_text("#prompt-text").strip(), page.inner_text("#take-info")
    assert first_take.startswith("Your take: ")
    _kept(page, 1)

    # Clipping, on the second sentence: warned while recording, then discarded: gone from the browser too.
    page.click("#next-button")
    start(loud)
    page.wait_for_selector("#recorder[data-level=clipping]", timeout=10_000)
    assert "Clipping" in page.inner_text("#level-warning")
    page.screenshot(path=str(tmp_path / "record-clipping.png"))
    time.sleep(0.8)
    stop()
    assert page.get_attribute("#recorder", "data-flag") == "clipping"
    _kept(page, 2)
    page.click("#discard-button")
    assert page.inner_text("#take-info") == "" and page.inner_text("#status") == "Take discarded."
    _kept(page, 1)

    # A reload asks first (unsent takes), then brings the kept take back with its sentence.
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))
    page.reload()
    page.wait_for_selector("#recorder[data-restored='1']", timeout=10_000)
    assert dialogs == ["beforeunload"]
    assert page.inner_text("#prompt-text").strip() == first_text
    assert page.inner_text("#take-info") == first_take  # with its length
    assert "Restored 1 recording" in page.inner_text("#status")
    page.click("#play-button")  # the stored audio plays
    page.wait_for_selector("#recorder[data-played=true]", timeout=10_000)

    page.click("#submit-button")
    page.wait_for_selector("#recorder[data-submitted='1']", timeout=30_000)
    _kept(page, 0)  # submitted: no longer kept
    clip = Clip.objects.get(contributor=volunteer)
    assert clip.prompt.text == first_text and clip.prompt_id in {p.pk for p in prompts}
    item = f"#progress-list li[data-clip-id='{clip.pk}']"
    page.wait_for_selector(item)
    assert page.inner_text(item).endswith("Waiting for validators · 0 of 6 votes")

    # Trustees vote; the page patches the line in place (no reload) as the votes come, up to valid.
    founders = FounderFactory.create_batch(6, vote_allowance=1)
    vote_on(founders[0], clip)
    page.wait_for_function(
        f"() => document.querySelector(\"{item}\").textContent.includes('1 of 6 votes (1 valid)')", timeout=10_000
    )
    for founder in founders[1:]:
        vote_on(founder, clip)
    clip.refresh_from_db()
    assert clip.status == ClipStatus.VALID
    page.wait_for_selector(f"{item}[data-status=valid]", timeout=10_000)
    assert page.inner_text(f"{item} .badge") == "Valid"
    assert page.inner_text("#week-goal").startswith(f"This week: {round(clip.duration_s)} s of your speech validated")
    page.screenshot(path=str(tmp_path / "record-progress.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # the meter row and the panel fit a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(tmp_path / "record-progress-phone.png"), full_page=True)
