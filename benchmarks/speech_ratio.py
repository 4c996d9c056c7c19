"""Measurement: the speech ratio of real speech, synthetic speech and near-silence, to choose the threshold
below which an upload is refused with ``audio_no_speech`` (``ClipLimits.min_speech_ratio``).

Usage::

    .venv/bin/python benchmarks/speech_ratio.py [--corpus PATH] [--espeak N] [--threshold R]

Every clip goes through the server's own path: written as the file a browser or the importer sends, then
``contributors.audio.normalise`` (decode, downmix, resample to 16 kHz, quantise) with the speech check
turned off, then ``estimate_speech`` on the stored samples. Sources:

* **speechocean762-train**: every recording of the shared half (16 kHz FLAC, children and adults reading
  words and sentences, silence before and after), as the importer uploads them.
* **espeak-ng**: ``--espeak`` sentences (default 40) read by eight voices in turn, resampled to 48 kHz (a
  microphone's rate), with 0.05 s before and 0.1 s after (as the browser tests feed the fake microphone),
  and the same readings again inside 1 s of room noise at -60 dBFS on either side (a person who waits
  before and after reading).
* **near-silence**: the issue's take: 3.5 s of room noise with 0.24 s of an espeak-ng reading in it, the
  whole at -54 dBFS RMS (above the -60 dBFS silence check), at ten positions.
* **room noise**: 3.5 s of pink noise with a 50 Hz hum, slowly modulated, at -50 to -30 dBFS.
* **tone**: 3.5 s of a steady sine (220 Hz to 2 kHz) at -30 to -10 dBFS, and one with a 0.3 s fade in/out.

For each the table gives clips, min / p5 / median speech ratio, and how many the threshold refuses. The
browser computes the same measure on the samples it captured (frontend/static/frontend/js/speech.js) at the
device's rate, after a 7.8 kHz low-pass, rather than at 16 kHz; the last line compares the two on the espeak-ng
readings at 48 kHz, with and without a steady 12 kHz tone under them.
"""

from __future__ import annotations

import argparse
import io
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contributors.audio import ClipLimits, estimate_speech, normalise  # noqa: E402

CORPUS = ROOT.parent / "shared" / "data" / "speechocean762-train"
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "She sells sea shells by the sea shore every summer.",
    "A large yellow boat drifted slowly toward the harbor.",
    "My grandmother keeps seven cats in her kitchen.",
    "Yes.",
    "Open the window.",
    "Twenty four.",
    "We call it bear.",
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
]
VOICES = ["en-us+m3", "en-us+f2", "en+f3", "en-us+m1", "en-us+f4", "en-gb", "en-us+m7", "en+f5"]
# Measure, refuse nothing here (the importer also lifts the 15 s cap for the corpus's longer readings).
LIMITS = replace(ClipLimits(), min_speech_ratio=0.0, min_duration_s=0.3, max_duration_s=60.0)


def wav(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def browser_ratio(samples: np.ndarray, rate: int) -> float:
    """The record page's measure (frontend/static/frontend/js/speech.js): low-passed at 7.8 kHz by the same
    127-tap Blackman-windowed sinc, then ``estimate_speech`` at the device's rate."""
    if rate > 2 * 7800 + 400:
        x = np.arange(127) - 63
        fc = 7800 / rate
        taps = np.where(x == 0, 2 * fc, np.sin(2 * np.pi * fc * x) / (np.pi * np.where(x == 0, 1, x)))
        taps *= np.blackman(127)
        samples = np.convolve(samples, taps / taps.sum(), mode="same").astype(np.float32)
    return estimate_speech(samples, sample_rate=rate).speech_ratio


def ratio_of(data: bytes) -> float:
    audio = normalise(data, LIMITS)
    return estimate_speech(audio.samples).speech_ratio


def pink(seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * rate)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    noise = np.fft.irfft(spectrum, n)
    return noise / np.sqrt(np.mean(noise**2))


def at_dbfs(samples: np.ndarray, dbfs: float) -> np.ndarray:
    rms = np.sqrt(np.mean(samples.astype(np.float64) ** 2))
    return (samples * (10 ** (dbfs / 20) / rms)).astype(np.float32)


def espeak(text: str, voice: str, folder: Path) -> np.ndarray:
    raw = folder / "raw.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True, timeout=60)
    samples, rate = sf.read(raw, dtype="float32")
    return soxr.resample(samples, rate, 48_000).astype(np.float32)


def room(seconds: float, rng: np.random.Generator, dbfs: float, rate: int = 48_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    hum = 0.3 * np.sin(2 * np.pi * 50 * t) + 0.1 * np.sin(2 * np.pi * 150 * t)
    noise = pink(seconds, rate, rng) * (1 + 0.3 * np.sin(2 * np.pi * 0.4 * t))
    return at_dbfs(noise + hum, dbfs)


def measure(corpus: Path, n_espeak: int) -> tuple[dict[str, list[float]], list[float]]:
    rng = np.random.default_rng(0)
    sources: dict[str, list[float]] = {}
    if corpus.exists():
        files = sorted((corpus / "audio").glob("*.flac"))
        sources["speechocean762-train (16 kHz FLAC)"] = [ratio_of(f.read_bytes()) for f in files]
    browser_gap: list[float] = []
    if shutil.which("espeak-ng"):
        tight, padded = [], []
        with tempfile.TemporaryDirectory() as folder:
            readings = [
                espeak(SENTENCES[i % len(SENTENCES)], VOICES[i % len(VOICES)], Path(folder)) for i in range(n_espeak)
            ]
        for speech in readings:
            take = np.concatenate([np.zeros(2400, np.float32), speech, np.zeros(4800, np.float32)])
            tight.append(ratio_of(wav(take, 48_000)))
            browser_gap.append(abs(browser_ratio(take, 48_000) - tight[-1]))
            # A steady 12 kHz whistle under the reading: the server's filter removes it, the page's must too.
            whistle = take * 0.6 + 0.18 * np.sin(2 * np.pi * 12_000 * np.arange(take.size) / 48_000)
            browser_gap.append(abs(browser_ratio(whistle, 48_000) - ratio_of(wav(whistle, 48_000))))
            waited = np.concatenate([room(1.0, rng, -60), speech, room(1.0, rng, -60)])
            padded.append(ratio_of(wav(waited, 48_000)))
        sources["espeak-ng, 0.15 s of silence (48 kHz WAV)"] = tight
        sources["espeak-ng, 2 s of room noise at -60 dBFS"] = padded
        near = []
        for i in range(10):
            snippet = readings[i % len(readings)]
            start = int(rng.integers(0, max(1, snippet.size - 11_520)))
            burst = snippet[start : start + 11_520]  # 0.24 s at 48 kHz
            take = room(3.5, rng, -70)
            at = int(rng.integers(0, take.size - burst.size))
            take[at : at + burst.size] += burst
            near.append(ratio_of(wav(at_dbfs(take, -54), 48_000)))
        sources["near-silence: 0.24 s of speech in 3.5 s, -54 dBFS"] = near
    sources["room noise (pink + hum), -50 to -30 dBFS"] = [
        ratio_of(wav(room(3.5, rng, dbfs), 48_000)) for dbfs in range(-50, -29, 2)
    ]
    tones = []
    t = np.arange(int(3.5 * 48_000)) / 48_000
    for freq in (220, 440, 1000, 2000):
        for dbfs in (-30, -20, -10):
            tones.append(ratio_of(wav(at_dbfs(np.sin(2 * np.pi * freq * t), dbfs), 48_000)))
    fade = np.clip(np.minimum(t, t[-1] - t) / 0.3, 0, 1)
    tones.append(ratio_of(wav(at_dbfs(np.sin(2 * np.pi * 440 * t) * fade, -20), 48_000)))
    sources["tone (220 Hz to 2 kHz, -30 to -10 dBFS)"] = tones
    return sources, browser_gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--espeak", type=int, default=40)
    parser.add_argument("--threshold", type=float, default=ClipLimits().min_speech_ratio)
    args = parser.parse_args()
    sources, gap = measure(args.corpus, args.espeak)
    print(f"Machine: {platform.machine()}, Python {platform.python_version()}; threshold {args.threshold:g}\n")
    print("| source | clips | min | p5 | median | max | refused |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, ratios in sources.items():
        r = np.asarray(ratios)
        refused = int((r < args.threshold).sum())
        print(
            f"| {name} | {r.size} | {r.min():.3f} | {np.percentile(r, 5):.3f} | {np.median(r):.3f} "
            f"| {r.max():.3f} | {refused} |"
        )
    if gap:
        print(
            "\nThe page's measure at 48 kHz vs the server's at 16 kHz (espeak-ng, with and without a 12 kHz tone): "
            f"max |difference| {max(gap):.3f} over {len(gap)} takes"
        )


if __name__ == "__main__":
    main()
