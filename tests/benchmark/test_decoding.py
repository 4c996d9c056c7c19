"""The published decoders: the HMM/bigram Viterbi decoder removes the frame flicker greedy decoding turns into
insertions, and needs a phone to last three frames; the release carries the specification."""

from __future__ import annotations

import numpy as np
import pytest

from speech.decoding import decode_greedy, decode_hmm_bigram, hmm_bigram_decoder, training_sequences
from speech.lexicon import PHONE_INDEX, SILENCE_INDEX
from speech.phones import INVENTORY

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

    make_corpus(speakers=6, clips_each=1)
    release = build("v1")
    spec = ReleaseFile.objects.get(release=release, path="SUBMISSION_SPEC.md")
    assert spec.format == "spec"
    text = (Path(settings.MEDIA_ROOT) / spec.storage_name).read_text()
    assert text.startswith("# Submission specification, version") and "hmm_bigram" in text


def test_the_leaderboards_numpy_decoder_gives_the_phones_of_the_training_decoder_with_the_same_weights():
    """The leaderboard keeps its own NumPy copy of the published decoder (no PyTorch in the sandbox); with the
    published weights it must agree with ``training.ml.decode`` on every utterance, ties and padding included."""
    import torch

    from speech.decoding import HMM_SELF_LOOP
    from speech.lexicon import N_STATES, STATES_PER_PHONE
    from training.ml.decode import Decoder, DecodeWeights, PhoneBigram

    rng = np.random.default_rng(7)
    transcripts = [
        [[str(p) for p in rng.choice(INVENTORY[:-1], size=rng.integers(1, 6))] for _ in range(rng.integers(1, 8))]
        for _ in range(60)
    ]
    utterances = []
    for length in [1, 2, 3, 7, 40, 95, 96, 130, 3, 250, *rng.integers(1, 300, size=50)]:
        logits = rng.normal(size=(int(length), len(INVENTORY))).astype(np.float32) * rng.uniform(0.5, 6)
        utterances.append(logits - np.log(np.exp(logits).sum(1, keepdims=True)))
    utterances.append(np.full((20, len(INVENTORY)), np.log(1 / len(INVENTORY)), dtype=np.float32))  # all ties

    reference = Decoder(
        PhoneBigram.estimate(training_sequences(transcripts)),
        torch.zeros(N_STATES),
        torch.full((N_STATES,), float(np.log(HMM_SELF_LOOP))),
        torch.full((N_STATES,), float(np.log1p(-HMM_SELF_LOOP))),
    )
    states = [torch.from_numpy(u).repeat_interleave(STATES_PER_PHONE, dim=1) for u in utterances]
    expected = reference.decode(states, DecodeWeights(1.0, 0.0, 1.0, 0.0), batch=32)

    assert hmm_bigram_decoder(transcripts).decode(utterances) == expected
    assert sum(len(x) for x in expected) > 500  # real sequences, not empty ones agreeing

    # A flat bigram (no transcripts) and flat outputs: every choice is a tie, broken the same way.
    flat = Decoder(PhoneBigram.estimate([]), reference.log_prior, reference.log_loop, reference.log_next)
    tied = np.full((30, len(INVENTORY)), -9.0, dtype=np.float32)
    tied[:10, [3, 8]] = tied[10:20, [5, 20]] = tied[20:, [1, 30]] = -0.1  # two equal best phones at a time
    tied_states = [*states[-3:], torch.from_numpy(tied).repeat_interleave(STATES_PER_PHONE, dim=1)]
    expected_tied = flat.decode(tied_states, DecodeWeights(1.0, 0.0, 1.0, 0.0), batch=32)
    assert hmm_bigram_decoder([]).decode([*utterances[-3:], tied]) == expected_tied
    assert len(expected_tied[-1]) == 3
