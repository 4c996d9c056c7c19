"""The platform's published decoders, applied inside the sandbox to a model's per-frame log-probabilities.

- ``greedy``: frame argmax, repeats collapsed, silence dropped (40 classes);
- ``greedy_ctc``: the same with a blank as the last class (41 classes);
- ``hmm_bigram``: Viterbi over 3-state left-to-right phone HMMs (each state emits its phone's log-probability,
  so a phone lasts at least 3 frames) with a phone bigram estimated from the release's training transcripts.
  Its parameters are fixed and published (below and in docs/submission-spec.md), never tuned on test data. The
  bigram's transcripts are the train split's without the shared prompts (``exports.bigram_transcripts``), as
  Kaldi's TIMIT recipe leaves out SA.

NumPy only, on purpose. The leaderboard's decoder is a published specification, so it lives here and not in
``training.ml.decode`` (a change to training's decoder must not silently change leaderboard scores), and the
sandboxed child imports nothing heavier than NumPy: importing PyTorch there cost about 2 s per evaluation, a
quarter of the sandbox's time on a release's test split. It computes in float32 in the same order as
``training.ml.decode.Decoder`` with the same weights, so both give the same phones (a test holds them equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from speech.phones import INVENTORY, SILENCE

# The submission specification these decoders implement (docs/submission-spec.md, "version N" in its title; every
# release ships it). Published scores are comparable only within a version: a change to what any decoder outputs
# or to a published parameter below is a new version, with the document's title and this number raised together.
SPEC_VERSION = 1
HMM_SELF_LOOP = 0.6  # per-state self-loop probability: about 2.5 frames per state, 7.5 per phone
HMM_BATCH = 32
BIGRAM_ADD = 0.5  # add-k smoothing of the bigram counts
STATES_PER_PHONE = 3
N_PHONES = len(INVENTORY)  # 39 phones + silence, the output order every model uses
PHONE_INDEX = {phone: i for i, phone in enumerate(INVENTORY)}
SILENCE_INDEX = PHONE_INDEX[SILENCE]
NEG = np.float32(-1e30)


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


@dataclass(frozen=True)
class HmmBigramDecoder:
    """Log-probabilities of the phone bigram (``start``: from <s>, ``transition[q, p]``: q then p, ``end``: to
    </s>) and of each state's self-loop and advance, all float32."""

    start: np.ndarray  # (P,)
    transition: np.ndarray  # (P, P)
    end: np.ndarray  # (P,)
    log_loop: np.ndarray  # (P, S)
    log_advance: np.ndarray  # (P, S)

    def decode(self, log_probs: Sequence[np.ndarray], batch: int = HMM_BATCH) -> list[list[int]]:
        out: list[list[int]] = []
        for i in range(0, len(log_probs), batch):
            out += self._decode_batch(log_probs[i : i + batch])
        return out

    def _decode_batch(self, log_probs: Sequence[np.ndarray]) -> list[list[int]]:
        b, p, s = len(log_probs), N_PHONES, STATES_PER_PHONE
        lengths = [len(x) for x in log_probs]
        t_max = max(lengths)
        # Each state emits its phone's log-probability (the states of a phone share one output).
        emit = np.zeros((b, t_max, p), dtype=np.float32)
        for i, x in enumerate(log_probs):
            emit[i, : len(x)] = x
        loop, advance = self.log_loop, self.log_advance
        delta = np.full((b, p, s), NEG, dtype=np.float32)
        delta[:, :, 0] = emit[:, 0] + self.start
        moved = np.zeros((t_max, b, p, s), dtype=bool)
        entered_from = np.zeros((t_max, b, p), dtype=np.int64)
        final = np.full((b, p), NEG, dtype=np.float32)
        length_t = np.asarray(lengths)
        come = np.empty((b, p, s), dtype=np.float32)
        for t in range(1, t_max + 1):
            done = length_t == t
            if done.any():
                final[done] = delta[done, :, 2] + advance[None, :, 2] + self.end
            if t == t_max:
                break
            exits = delta[:, :, 2] + advance[None, :, 2]
            scores = exits[:, :, None] + self.transition[None]  # (b, from q, to p)
            entry_arg = scores.argmax(axis=1)
            come[:, :, 0] = np.take_along_axis(scores, entry_arg[:, None, :], axis=1)[:, 0, :]
            come[:, :, 1:] = delta[:, :, :-1] + advance[None, :, :-1]
            stay = delta + loop[None]
            take = come > stay
            moved[t] = take
            entered_from[t] = entry_arg
            delta = np.where(take, come, stay) + emit[:, t, :, None]
        return viterbi_backtrace(final, moved, entered_from, lengths)


def estimate_bigram(sequences: Sequence[Sequence[int]], add: float = BIGRAM_ADD) -> tuple[np.ndarray, ...]:
    """Add-k bigram over phone indices with <s> and </s>: (start, transition, end) log-probabilities."""
    counts = np.full((N_PHONES + 1, N_PHONES + 1), add)  # index P is <s> as a row, </s> as a column
    for seq in sequences:
        previous = N_PHONES
        for phone in seq:
            counts[previous, phone] += 1
            previous = phone
        counts[previous, N_PHONES] += 1
    counts[N_PHONES, N_PHONES] = 0.0
    with np.errstate(divide="ignore"):  # <s> straight to </s> is impossible
        log = np.log(counts / counts.sum(1, keepdims=True)).astype(np.float32)
    return log[N_PHONES, :N_PHONES], log[:N_PHONES, :N_PHONES], log[:N_PHONES, N_PHONES]


def hmm_bigram_decoder(transcripts: Sequence[Sequence[Sequence[str]]]) -> HmmBigramDecoder:
    """The leaderboard's decoder; ``transcripts`` come from ``bigram_transcripts(release entries)``."""
    start, transition, end = estimate_bigram(training_sequences(transcripts))
    shape = (N_PHONES, STATES_PER_PHONE)
    return HmmBigramDecoder(
        start=start,
        transition=transition,
        end=end,
        log_loop=np.full(shape, np.log(HMM_SELF_LOOP), dtype=np.float32),
        log_advance=np.full(shape, np.log1p(-HMM_SELF_LOOP), dtype=np.float32),
    )


def decode_hmm_bigram(decoder: HmmBigramDecoder, log_probs: Sequence[np.ndarray]) -> list[list[str]]:
    """40-class log-probabilities per utterance -> phones (silence dropped), through the phone HMMs and bigram."""
    arrays = [np.asarray(lp, dtype=np.float32) for lp in log_probs]
    out: list[list[str]] = [[] for _ in arrays]
    nonempty = [i for i, a in enumerate(arrays) if len(a)]
    decoded = decoder.decode([arrays[i] for i in nonempty])
    for i, sequence in zip(nonempty, decoded, strict=True):
        out[i] = [INVENTORY[p] for p in sequence if INVENTORY[p] != SILENCE]
    return out


def viterbi_backtrace(
    final: np.ndarray, moved: np.ndarray, entered_from: np.ndarray, lengths: Sequence[int]
) -> list[list[int]]:
    """The phone sequence of each utterance from a left-to-right phone HMM's Viterbi pass: ``final`` (B, P) the
    best score of ending in each phone, ``moved`` (T, B, P, S) whether a state was entered from outside itself at
    frame t, ``entered_from`` (T, B, P) the phone a phone's first state was entered from. Shared by the
    leaderboard's decoder and training's, which differ in how they score, not in how they read the path back."""
    s = moved.shape[-1]
    results = []
    for i in range(len(lengths)):
        phone, state = int(final[i].argmax()), s - 1
        sequence = [phone]
        for t in range(lengths[i] - 1, 0, -1):
            if moved[t, i, phone, state]:
                if state == 0:
                    phone, state = int(entered_from[t, i, phone]), s - 1
                    sequence.append(phone)
                else:
                    state -= 1
        results.append(sequence[::-1])
    return results
