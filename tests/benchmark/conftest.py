"""Small synthetic releases: contributors with demographics, real prompts, valid clips through the upload service;
and what the submission tests share: small sandbox limits, a user, the evaluations enqueued."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmark.releases.services import release_build, release_create
from contributors.models import ClipStatus, Provenance
from contributors.services.clips import clip_submit
from contributors.services.imports import corpus_source_register
from contributors.services.prompts import prompt_create
from tests.broker import EVALUATION, Enqueued
from tests.factories import ContributorFactory, UserFactory, speechlike, wav_bytes

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
    "A big black bug bit a big black bear.",
    "Please call me back when you have a moment.",
    "The yellow kite flew over the church tower.",
)
FAST_SANDBOX = {
    "memory_bytes": 2 * 1024**3,
    "cpu_seconds": 60,
    "wall_seconds": 120,
    "threads": 1,
    "rtf_runs": 2,
    "rtf_utterances": 2,
}
SHARED = (
    Path(os.environ.get("SHARED_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "data"))
    / "speechocean762-train"
)


def _speaker_profile(index: int) -> dict[str, str]:
    return {
        "gender": ("female", "male")[index % 2],
        "age_band": ("0-12", "30-44", "18-29")[index % 3],
        # One rare accent (a single speaker): it must be withheld from every published file.
        "accent": "Rare Island" if index == 0 else "US General",
    }


def make_corpus(
    *,
    speakers: int = 14,
    clips_each: int = 3,
    seconds: float = 1.2,
    seed: int = 0,
    provenance: str = Provenance.RECORDED,
) -> list:
    """Contributors with valid clips. By default recorded on the platform (status given, as if the votes had
    settled), so that a release of them has a hidden split (only platform speakers may be hidden; releases of
    at least 10 speakers get one of 5); ``provenance=Provenance.IMPORTED`` makes an imported corpus, which
    contributes no hidden speaker."""
    prompts = [prompt_create(text=t)[0] for t in SENTENCES]
    source = None
    if provenance == Provenance.IMPORTED:
        source, _ = corpus_source_register(
            name="test-corpus", licence="CC-BY-4.0", url="https://corpus.example/", citation="Test Corpus (2025)."
        )
    contributors = []
    for s in range(speakers):
        contributor = ContributorFactory(**_speaker_profile(s))
        contributors.append(contributor)
        for c in range(clips_each):
            prompt = prompts[(s + c) % len(prompts)]
            data = wav_bytes(speechlike(seconds + 0.1 * c, seed=seed + 1000 * s + c))
            clip_submit(
                contributor=contributor,
                prompt_id=prompt.pk,
                data=data,
                provenance=provenance,
                source=source,
                status=ClipStatus.VALID,
                analyse_inline=True,
            )
    return contributors


def build(version: str, **kwargs):
    release = release_create(version=version, **kwargs)
    built = release_build(release_id=release.pk)
    assert built.status == "ready", built.error
    return built


@pytest.fixture
def corpus(db):
    return make_corpus()


@pytest.fixture
def release(corpus, settings):
    return build("v1")


def release_root(settings, release) -> Path:
    return Path(settings.MEDIA_ROOT) / release.storage_prefix


# --- submissions ----------------------------------------------------------------------------------------------------
@pytest.fixture
def fast_sandbox(settings):
    """Evaluations under small sandbox limits, and three submissions a day."""
    settings.SUBMISSION_SANDBOX = FAST_SANDBOX
    settings.SUBMISSION_DAILY_QUOTA = 3


@pytest.fixture
def enqueued() -> Enqueued:
    """The evaluations the services sent to the test broker, (submission id, release id) each; no worker takes them
    in the unit tests, so a test plays the worker where it needs one."""
    return Enqueued(*EVALUATION)


@pytest.fixture
def user(db):
    return UserFactory()
