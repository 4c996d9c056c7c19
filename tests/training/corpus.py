"""A tiny synthetic corpus for CPU tests: espeak-ng words joined by known silences, so word timings are known."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from speech.lexicon import transcript_words
from training.ml.data import Utterance

WORDS = [
    "we",
    "call",
    "it",
    "bear",
    "she",
    "sells",
    "sea",
    "shells",
    "zero",
    "three",
    "five",
    "one",
    "seven",
    "two",
    "eight",
    "nine",
    "red",
    "blue",
    "green",
    "yellow",
    "happy",
    "monkey",
    "water",
    "garden",
]
VOICES = (("en-us", 150, 50), ("en-us", 175, 35), ("en-us+f3", 160, 60), ("en-us+m3", 140, 45))
RATE = 16000
SHIFT = 160


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesise(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "w.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), word],
            check=True,
            capture_output=True,
            timeout=30,
        )
        audio, rate = soundfile.read(str(out), dtype="float32")
    audio = soxr.resample(audio, rate, RATE).astype(np.float32)
    energy = np.convolve(audio**2, np.ones(160) / 160, mode="same")
    voiced = np.flatnonzero(energy > 1e-3 * energy.max())
    return audio[voiced[0] : voiced[-1] + 1]


@dataclass
class TinyCorpus:
    utterances: list[Utterance]
    waves: list[np.ndarray]
    word_frames: list[np.ndarray]  # per frame: index of the word being spoken, -1 in silence


def build(n_train: int = 48, n_dev: int = 8, n_test: int = 8, seed: int = 0) -> TinyCorpus:
    rng = np.random.default_rng(seed)
    clips = {(w, v): synthesise(w, *VOICES[v]) for w in WORDS for v in range(len(VOICES))}
    utterances, waves, truths = [], [], []
    splits = ["train"] * n_train + ["dev"] * n_dev + ["test"] * n_test
    for i, split in enumerate(splits):
        voice = i % len(VOICES)
        words = list(rng.choice(WORDS, size=int(rng.integers(2, 5)), replace=False))
        pieces, owner = [], []
        for k, word in enumerate(words):
            gap = int(rng.uniform(0.15, 0.3) * RATE) if k == 0 else int(rng.choice([0, rng.uniform(0.05, 0.25)]) * RATE)
            pieces += [np.zeros(gap, np.float32), clips[(word, voice)]]
            owner += [np.full(gap, -1), np.full(len(clips[(word, voice)]), k)]
        tail = int(rng.uniform(0.15, 0.3) * RATE)
        pieces.append(np.zeros(tail, np.float32))
        owner.append(np.full(tail, -1))
        wave = np.concatenate(pieces)
        wave = wave + rng.normal(0, 1e-3, len(wave)).astype(np.float32)  # a noise floor, as real rooms have
        sample_owner = np.concatenate(owner)
        n_frames = (len(wave) - 400) // SHIFT + 1
        truths.append(sample_owner[np.arange(n_frames) * SHIFT + 200])
        text = " ".join(words)
        utterances.append(
            Utterance(
                utt_id=f"tiny{i:03d}",
                speaker=f"voice{voice}",
                audio="",
                text=text,
                split=split,
                words=transcript_words(text, {}),
            )
        )
        waves.append(wave)
    return TinyCorpus(utterances, waves, truths)
