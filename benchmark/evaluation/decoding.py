"""The platform's published decoders, applied outside the sandbox to a model's per-frame log-probabilities.

- ``greedy``: frame argmax, repeats collapsed, silence dropped (40 classes);
- ``greedy_ctc``: the same with a blank as the last class (41 classes);
- ``hmm_bigram``: Viterbi over 3-state left-to-right phone HMMs (each state emits its phone's log-probability,
  so a phone lasts at least 3 frames) with a phone bigram estimated from the release's training transcripts.
  Its parameters are fixed and published (below and in docs/submission-spec.md), never tuned on test data, so
  anyone can reproduce a score with ``training.ml.decode`` and the release's train manifest. The bigram's
  transcripts are the train split's without the shared prompts (``exports.bigram_transcripts``), as Kaldi's TIMIT recipe
  leaves out SA.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from benchmark.exports import bigram_transcripts  # noqa: F401  (the bigram's transcripts: see the docstring)
from core.phones import INVENTORY, SILENCE
from training.ml.decode import Decoder, DecodeWeights, PhoneBigram
from training.ml.lexicon import N_STATES, PHONE_INDEX, SILENCE_INDEX, STATES_PER_PHONE

HMM_SELF_LOOP = 0.6  # per-state self-loop probability: about 2.5 frames per state, 7.5 per phone
HMM_WEIGHTS = DecodeWeights(acoustic_scale=1.0, prior_scale=0.0, lm_weight=1.0, insertion_penalty=0.0)
HMM_BATCH = 32


def decode_greedy(log_probs: np.ndarray, *, ctc: bool) -> list[str]:
    """Frame argmax, repeats collapsed, silence (and the CTC blank, last) dropped."""
    best = np.asarray(log_probs).argmax(axis=-1)
    if best.size == 0:
        return []
    keep = np.concatenate([[True], best[1:] != best[:-1]])
    phones = []
    for index in best[keep]:
        if index >= len(INVENTORY):  # the CTC blank, last
            continue
        phone = INVENTORY[int(index)]
        if phone != SILENCE:
            phones.append(phone)
    return phones


def training_sequences(transcripts: Sequence[Sequence[Sequence[str]]]) -> list[list[int]]:
    """Phone-index sequences for the bigram from per-word canonical phones: each utterance twice, once with
    silence between all words and once with silence only at its ends (the training data has no word timings, so
    both ways of reading a word boundary are counted)."""
    sequences = []
    for words in transcripts:
        phones = [[PHONE_INDEX[p] for p in word] for word in words if word]
        if not phones:
            continue
        pausing = [SILENCE_INDEX]
        for word in phones:
            pausing += [*word, SILENCE_INDEX]
        sequences.append(pausing)
        sequences.append([SILENCE_INDEX, *(p for word in phones for p in word), SILENCE_INDEX])
    return sequences


def hmm_bigram_decoder(transcripts: Sequence[Sequence[Sequence[str]]]) -> Decoder:
    """The leaderboard's decoder; ``transcripts`` come from ``bigram_transcripts(release entries)``."""
    loop = torch.full((N_STATES,), float(np.log(HMM_SELF_LOOP)))
    advance = torch.full((N_STATES,), float(np.log1p(-HMM_SELF_LOOP)))
    return Decoder(PhoneBigram.estimate(training_sequences(transcripts)), torch.zeros(N_STATES), loop, advance)


def decode_hmm_bigram(decoder: Decoder, log_probs: Sequence[np.ndarray]) -> list[list[str]]:
    """40-class log-probabilities per utterance -> phones (silence dropped), through the phone HMMs and bigram."""
    states = [
        torch.from_numpy(np.asarray(lp, dtype=np.float32)).repeat_interleave(STATES_PER_PHONE, dim=1)
        for lp in log_probs
    ]
    out: list[list[str]] = [[] for _ in states]
    nonempty = [i for i, s in enumerate(states) if len(s)]
    decoded = decoder.decode([states[i] for i in nonempty], HMM_WEIGHTS, batch=HMM_BATCH)
    for i, sequence in zip(nonempty, decoded, strict=True):
        out[i] = [INVENTORY[p] for p in sequence if INVENTORY[p] != SILENCE]
    return out
