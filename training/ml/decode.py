"""Viterbi decoding over 3-state phone HMMs with a phone bigram, batched over utterances; weights tuned on dev."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from speech.decoding import estimate_bigram, viterbi_backtrace
from speech.lexicon import N_PHONES, N_STATES, STATES_PER_PHONE
from speech.phones import INVENTORY
from training.ml.align import phone_segments

NEG = -1e30


@dataclass
class PhoneBigram:
    start: torch.Tensor  # (P,) log P(p | <s>)
    transition: torch.Tensor  # (P, P) log P(p | q), row q
    end: torch.Tensor  # (P,) log P(</s> | p)

    @classmethod
    def estimate(cls, sequences: Sequence[Sequence[int]], add: float = 0.5) -> PhoneBigram:
        start, transition, end = (torch.from_numpy(x) for x in estimate_bigram(sequences, add))
        return cls(start=start, transition=transition, end=end)


def collapse(labels: np.ndarray) -> list[int]:
    """Frame state labels -> phone sequence (a new phone whenever the state restarts)."""
    return [phone for phone, _, _ in phone_segments(labels)]


def transition_logs(labels: torch.Tensor, fixed_loop: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-state log self-loop and log advance probabilities from mean state durations in the alignments."""
    labels_np = labels.numpy()
    change = np.concatenate([[True], labels_np[1:] != labels_np[:-1]])
    visits = np.bincount(labels_np[change], minlength=N_STATES).astype(float)
    frames = np.bincount(labels_np, minlength=N_STATES).astype(float)
    duration = np.where(visits > 0, frames / np.maximum(visits, 1), 3.0)
    loop = np.full(N_STATES, fixed_loop) if fixed_loop else np.clip(1.0 - 1.0 / np.maximum(duration, 1.0), 0.01, 0.99)
    return torch.from_numpy(np.log(loop)).float(), torch.from_numpy(np.log1p(-loop)).float()


@dataclass
class DecodeWeights:
    acoustic_scale: float = 1.0
    prior_scale: float = 1.0
    lm_weight: float = 1.0
    insertion_penalty: float = 0.0


@dataclass
class Decoder:
    bigram: PhoneBigram
    log_prior: torch.Tensor  # (120,)
    log_loop: torch.Tensor  # (120,)
    log_next: torch.Tensor  # (120,)

    def decode(self, log_probs: list[torch.Tensor], weights: DecodeWeights, batch: int = 64) -> list[list[int]]:
        out: list[list[int]] = []
        for i in range(0, len(log_probs), batch):
            out += self._decode_batch(log_probs[i : i + batch], weights)
        return out

    def _decode_batch(self, log_probs: list[torch.Tensor], w: DecodeWeights) -> list[list[int]]:
        b, p, s = len(log_probs), N_PHONES, STATES_PER_PHONE
        lengths = [len(x) for x in log_probs]
        t_max = max(lengths)
        emit = torch.full((b, t_max, N_STATES), 0.0)
        for i, x in enumerate(log_probs):
            emit[i, : len(x)] = w.acoustic_scale * (x - w.prior_scale * self.log_prior)
        emit = emit.view(b, t_max, p, s)
        loop = self.log_loop.view(p, s)
        advance = self.log_next.view(p, s)
        arc = w.lm_weight * self.bigram.transition + w.insertion_penalty  # (q, p)
        delta = torch.full((b, p, s), NEG)
        delta[:, :, 0] = emit[:, 0, :, 0] + w.lm_weight * self.bigram.start + w.insertion_penalty
        moved = torch.zeros((t_max, b, p, s), dtype=torch.bool)
        entered_from = torch.zeros((t_max, b, p), dtype=torch.long)
        final = torch.full((b, p), NEG)
        length_t = torch.tensor(lengths)
        for t in range(1, t_max + 1):
            done = length_t == t
            if done.any():
                final[done] = delta[done, :, 2] + advance[None, :, 2] + w.lm_weight * self.bigram.end
            if t == t_max:
                break
            exits = delta[:, :, 2] + advance[None, :, 2]
            entry, entry_arg = (exits[:, :, None] + arc[None]).max(1)
            stay = delta + loop[None]
            come = torch.cat([entry[:, :, None], delta[:, :, :-1] + advance[None, :, :-1]], dim=2)
            take = come > stay
            moved[t] = take
            entered_from[t] = entry_arg
            delta = torch.where(take, come, stay) + emit[:, t]
        return viterbi_backtrace(final.numpy(), moved.numpy(), entered_from.numpy(), lengths)


def to_phones(sequence: Sequence[int]) -> list[str]:
    return [INVENTORY[p] for p in sequence]


def tune(
    decoder: Decoder,
    log_probs: list[torch.Tensor],
    evaluate: Callable[[list[list[int]]], float],
    acoustic_scales: Sequence[float],
    prior_scales: Sequence[float],
    lm_weights: Sequence[float],
    insertion_penalties: Sequence[float],
) -> tuple[DecodeWeights, float, list[tuple[DecodeWeights, float]]]:
    """Grid search of the decoding weights by ``evaluate`` (PER on dev); returns the best, its PER and the grid."""
    grid = []
    for a, pr, lm, ins in itertools.product(acoustic_scales, prior_scales, lm_weights, insertion_penalties):
        weights = DecodeWeights(a, pr, lm, ins)
        grid.append((weights, evaluate(decoder.decode(log_probs, weights))))
    best = min(grid, key=lambda item: item[1])
    return best[0], best[1], grid
