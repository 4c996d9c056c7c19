"""Real Chromium, driven by Playwright against the live test server, with a fake microphone."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from django.db import connections

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
BASE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


def _require(condition: bool, message: str) -> None:
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI installs it)")
    pytest.skip(message)


@pytest.fixture
def playwright_driver() -> Iterator[object]:
    """Per test: Playwright's event loop and the environment switch below must not outlive the test."""
    _require(Path(CHROMIUM).exists(), f"Chromium is not installed at {CHROMIUM}")
    playwright = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an asyncio loop in this thread; Django's guard against database calls
    # from async code would refuse the test's own (synchronous) queries while it runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with playwright.sync_playwright() as driver:
            try:
                yield driver
            finally:
                # While the loop runs, Django keeps this thread's connections per asyncio context (asgiref's
                # Local), apart from the test's own: close the test's queries' connection before the loop stops
                # and hides it, or it stays open and the test database cannot be dropped at the end of the run.
                connections.close_all()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def launch(playwright_driver):
    """launch(*extra_flags) -> a Chromium browser; closed after the test."""
    browsers = []

    def _launch(*flags: str):
        browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=[*BASE_FLAGS, *flags])
        browsers.append(browser)
        return browser

    yield _launch
    for browser in browsers:
        browser.close()


@pytest.fixture(scope="session")
def speak(tmp_path_factory):
    """speak(text, voice) -> path of a 48 kHz WAV of espeak-ng reading ``text`` (a microphone's rate)."""
    _require(shutil.which("espeak-ng") is not None, "espeak-ng is not installed")
    folder = tmp_path_factory.mktemp("espeak")
    cache: dict[tuple[str, str], Path] = {}

    def _speak(text: str, voice: str = "en-us+m3") -> Path:
        if (text, voice) in cache:
            return cache[(text, voice)]
        raw = folder / f"raw-{len(cache)}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True, timeout=60)
        samples, rate = sf.read(raw, dtype="float32")
        samples = soxr.resample(samples, rate, 48_000)
        padded = np.concatenate([np.zeros(2400, np.float32), samples, np.zeros(4800, np.float32)])
        path = folder / f"speech-{len(cache)}.wav"
        sf.write(path, padded, 48_000, subtype="PCM_16")
        cache[(text, voice)] = path
        return path

    return _speak


def screenshot(page, name: str) -> None:
    """Save the page at desktop and phone widths as a test artefact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})):
        page.set_viewport_size(size)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
