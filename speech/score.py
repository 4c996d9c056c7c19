"""Phone error rate on the 39 phones (silence not scored) with substitutions, deletions and insertions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from speech.phones import SILENCE


@dataclass
class ErrorCounts:
    reference: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def per(self) -> float:
        return self.errors / max(1, self.reference)

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            self.reference + other.reference,
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "per": self.per,
            "n": self.reference,
            "sub": self.substitutions,
            "del": self.deletions,
            "ins": self.insertions,
        }


def scored(phones: Iterable[str]) -> list[str]:
    return [p for p in phones if p != SILENCE]


def align_counts(reference: Sequence[str], hypothesis: Sequence[str]) -> ErrorCounts:
    """Levenshtein alignment; among equal-cost paths prefers substitutions, as sclite does."""
    ref, hyp = scored(reference), scored(hypothesis)
    n, m = len(ref), len(hyp)
    # cost[i][j] = (errors, subs, dels, ins) for ref[:i] vs hyp[:j]
    prev = [(j, 0, 0, j) for j in range(m + 1)]
    for i in range(1, n + 1):
        row = [(i, 0, i, 0)]
        for j in range(1, m + 1):
            match = prev[j - 1]
            diag = match if ref[i - 1] == hyp[j - 1] else (match[0] + 1, match[1] + 1, match[2], match[3])
            up = prev[j]
            left = row[j - 1]
            delete = (up[0] + 1, up[1], up[2] + 1, up[3])
            insert = (left[0] + 1, left[1], left[2], left[3] + 1)
            row.append(min(diag, delete, insert, key=lambda c: c[0]))
        prev = row
    _, subs, dels, ins = prev[m]
    return ErrorCounts(n, subs, dels, ins)


def corpus_counts(references: Iterable[Sequence[str]], hypotheses: Iterable[Sequence[str]]) -> ErrorCounts:
    total = ErrorCounts()
    for ref, hyp in zip(references, hypotheses, strict=True):
        total = total + align_counts(ref, hyp)
    return total


@dataclass(frozen=True)
class Difference:
    """PER(b) - PER(a) on the same utterances, with a paired speaker-level bootstrap interval."""

    difference: float
    low: float
    high: float
    resamples: int

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_speaker_bootstrap(
    speakers: Sequence[str],
    errors_a: Sequence[float],  # per utterance: counts, or a row's mean over its seeds
    errors_b: Sequence[float],
    references: Sequence[int],
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Difference:
    """Resample speakers with replacement (utterances of one speaker are not independent, so speakers, not
    utterances, are the unit) and take the same draw for both systems: the interval of PER(b) - PER(a)."""
    import numpy as np

    names = sorted(set(speakers))
    index = {s: i for i, s in enumerate(names)}
    rows = np.array([index[s] for s in speakers])
    per_speaker = np.zeros((3, len(names)))
    for k, values in enumerate((errors_a, errors_b, references)):
        np.add.at(per_speaker[k], rows, np.asarray(values, dtype=float))
    draws = np.random.default_rng(seed).integers(0, len(names), size=(resamples, len(names)))
    a, b, n = (per_speaker[k][draws].sum(1) for k in range(3))
    deltas = (b - a) / np.maximum(n, 1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(deltas, [tail, 1 - tail])
    total = per_speaker.sum(1)
    return Difference(float((total[1] - total[0]) / max(total[2], 1)), float(low), float(high), resamples)
