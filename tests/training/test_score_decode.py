import numpy as np
import torch

from speech.lexicon import N_STATES, PHONE_INDEX, SILENCE_INDEX
from speech.score import align_counts, corpus_counts
from training.ml.align import viterbi_align
from training.ml.decode import Decoder, DecodeWeights, PhoneBigram, collapse, to_phones


def test_per_counts_substitutions_deletions_insertions_and_ignores_silence():
    counts = align_counts(["sil", "K", "AE", "T", "sil"], ["K", "AA", "T", "S", "sil"])
    assert (counts.reference, counts.substitutions, counts.deletions, counts.insertions) == (3, 1, 0, 1)
    counts = align_counts(["K", "AE", "T"], ["K"])
    assert (counts.deletions, counts.per) == (2, 2 / 3)
    total = corpus_counts([["K", "AE", "T"], ["D", "AO", "G"]], [["K", "AE", "T"], ["D", "AO", "G"]])
    assert total.per == 0.0


def _posteriors(phones: list[int], frames_per_state: int = 3) -> torch.Tensor:
    rows = []
    for p in phones:
        for s in range(3):
            for _ in range(frames_per_state):
                row = torch.full((N_STATES,), -8.0)
                row[3 * p + s] = -0.01
                rows.append(row)
    return torch.stack(rows)


def test_viterbi_decoder_recovers_a_phone_sequence():
    sequence = [SILENCE_INDEX, PHONE_INDEX["K"], PHONE_INDEX["AE"], PHONE_INDEX["T"], SILENCE_INDEX]
    bigram = PhoneBigram.estimate([sequence])
    zeros = torch.zeros(N_STATES)
    decoder = Decoder(bigram, zeros - np.log(N_STATES), zeros + np.log(0.5), zeros + np.log(0.5))
    (hyp,) = decoder.decode([_posteriors(sequence)], DecodeWeights())
    assert to_phones(hyp) == ["sil", "K", "AE", "T", "sil"]


def test_forced_alignment_takes_optional_silence_only_where_it_is():
    words = [["K", "AE", "T"], ["D", "AO", "G"]]
    truth = [SILENCE_INDEX, *[PHONE_INDEX[p] for p in words[0]], *[PHONE_INDEX[p] for p in words[1]]]
    path, _ = viterbi_align(_posteriors(truth).double().numpy(), words)
    assert collapse(path) == truth
