"""The published decoders: the HMM/bigram Viterbi decoder removes the frame flicker greedy decoding turns into
insertions, and needs a phone to last three frames; the release carries the specification."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.evaluation.decoding import decode_greedy, decode_hmm_bigram, hmm_bigram_decoder, training_sequences
from core.phones import INVENTORY
from training.ml.lexicon import PHONE_INDEX, SILENCE_INDEX

TRANSCRIPTS = [[["HH", "AH", "L", "OW"], ["W", "ER", "L", "D"]], [["HH", "AH", "L", "OW"]]] * 5


def frames(segments: list[tuple[str, int]], *, flicker: dict[int, str] | None = None) -> np.ndarray:
    """Log-probabilities confident in each segment's phone for its frames; ``flicker`` sets single frames."""
    labels = [phone for phone, n in segments for _ in range(n)]
    for t, phone in (flicker or {}).items():
        labels[t] = phone
    out = np.full((len(labels), len(INVENTORY)), np.log(0.1 / (len(INVENTORY) - 1)), dtype=np.float32)
    for t, phone in enumerate(labels):
        out[t, PHONE_INDEX[phone]] = np.log(0.9)
    return out


def test_the_bigram_reads_each_transcript_with_and_without_pauses_between_words():
    sequences = training_sequences([[["HH", "AH"], ["OW"]]])
    hh, ah, ow, sil = PHONE_INDEX["HH"], PHONE_INDEX["AH"], PHONE_INDEX["OW"], SILENCE_INDEX
    assert sequences == [[sil, hh, ah, sil, ow, sil], [sil, hh, ah, ow, sil]]


def test_hmm_decoding_ignores_one_frame_flicker_that_greedy_counts_as_insertions():
    log_probs = frames(
        [("sil", 10), ("HH", 6), ("AH", 8), ("L", 6), ("OW", 12), ("sil", 10)], flicker={20: "Z", 33: "K", 40: "S"}
    )
    assert decode_greedy(log_probs, ctc=False) == ["HH", "AH", "Z", "AH", "L", "OW", "K", "OW", "S", "OW"]
    decoder = hmm_bigram_decoder(TRANSCRIPTS)
    assert decode_hmm_bigram(decoder, [log_probs]) == [["HH", "AH", "L", "OW"]]


def test_hmm_decoding_of_a_batch_keeps_the_order_and_handles_empty_outputs():
    decoder = hmm_bigram_decoder(TRANSCRIPTS)
    hello = frames([("sil", 5), ("HH", 5), ("AH", 5), ("L", 5), ("OW", 5), ("sil", 5)])
    world = frames([("sil", 5), ("W", 5), ("ER", 5), ("L", 5), ("D", 5), ("sil", 5)])
    empty = np.zeros((0, len(INVENTORY)), dtype=np.float32)
    assert decode_hmm_bigram(decoder, [world, empty, hello]) == [["W", "ER", "L", "D"], [], ["HH", "AH", "L", "OW"]]


@pytest.mark.django_db
def test_every_release_carries_the_submission_specification(settings):
    from pathlib import Path

    from benchmark.models import ReleaseFile
    from tests.benchmark.conftest import build, make_corpus

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    make_corpus(speakers=6, clips_each=1)
    release = build("v1")
    spec = ReleaseFile.objects.get(release=release, path="SUBMISSION_SPEC.md")
    assert spec.format == "spec"
    text = (Path(settings.MEDIA_ROOT) / spec.storage_name).read_text()
    assert text.startswith("# Submission specification, version") and "hmm_bigram" in text
