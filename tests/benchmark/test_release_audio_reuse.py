"""A release copies the previous release's WAV of a clip it publishes again, rather than decode the same FLAC a second
time, but only a copy whose bytes are what decoding gives and what that release's checksum says: a damaged or
missing one is decoded again, and every published WAV is the clip's samples either way."""

from __future__ import annotations

import hashlib
import logging

import pytest
import soundfile as sf
from django.core.files.storage import default_storage

from benchmark.releases.build import wav_pcm16
from benchmark.releases.packaging import parse_sha256sums
from benchmark.releases.selectors import release_public_entries
from benchmark.releases.services import release_build, release_create
from contributors.models import Clip
from tests.benchmark.conftest import release_root

pytestmark = pytest.mark.django_db


def _build(version: str) -> tuple[object, list[str]]:
    said: list[str] = []
    built = release_build(release_id=release_create(version=version).pk, progress=said.append)
    assert built.status == "ready", built.error
    return built, said


def _decoded(sha256: str) -> bytes:
    """What decoding the stored clip gives."""
    clip = Clip.objects.get(sha256=sha256)
    with default_storage.open(clip.audio.name, "rb") as handle, sf.SoundFile(handle) as source:
        return bytes(wav_pcm16(source)[0])


def test_a_new_release_copies_the_previous_releases_verified_wavs_and_decodes_the_rest(release, settings, caplog):
    v1_root = release_root(settings, release)
    wavs = {e.sha256: e.audio for e in release_public_entries(release=release)}
    assert wavs and all(path.endswith(".WAV") for path in wavs.values())
    damaged, missing, rewritten, *_ = sorted(wavs)
    intact = v1_root / wavs[damaged]
    (v1_root / wavs[missing]).unlink()  # an operator tidied it away
    samples = bytearray(intact.read_bytes())
    samples[-2] ^= 0xFF  # one sample flipped on disk, the size unchanged
    intact.write_bytes(samples)
    # Another writer's RIFF of the same samples (another byte rate in its header), recorded with its own checksum:
    # intact, but not the bytes decoding gives, so not copied either.
    other = bytearray((v1_root / wavs[rewritten]).read_bytes())
    other[28:32] = (12345).to_bytes(4, "little")
    (v1_root / wavs[rewritten]).write_bytes(other)
    release.files.filter(path=wavs[rewritten]).update(sha256=hashlib.sha256(other).hexdigest())

    with caplog.at_level(logging.WARNING, logger="benchmark.releases.build"):
        v2, said = _build("v2")
    assert f"{len(wavs) - 3} clips' WAV copied from release v1, 3 decoded" in said
    assert f"{intact} does not match its release's checksum" in caplog.text

    v2_root = release_root(settings, v2)
    v2_sums = parse_sha256sums((v2_root / "SHA256SUMS").read_text())
    entries = {e.sha256: e.audio for e in release_public_entries(release=v2)}
    assert entries.keys() == wavs.keys()
    for sha256, rel in entries.items():
        data = (v2_root / rel).read_bytes()
        assert data == _decoded(sha256), rel  # the clip's samples, copied or decoded
        assert v2_sums[rel] == dict(v2.files.values_list("path", "sha256"))[rel]
    # The damaged copy was not passed on, and its checksum in v2 is that of the clip's true samples.
    assert (v2_root / wavs[damaged]).read_bytes() != bytes(samples)


def test_a_first_release_and_a_flac_release_copy_no_wav(corpus):
    _, said = _build("v1")  # nothing before it
    flac = release_build(release_id=release_create(version="v2", audio_format="flac").pk, progress=said.append)
    assert flac.status == "ready", flac.error
    assert not any("copied from release" in line for line in said), said
