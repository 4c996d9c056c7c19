"""Phone error rate on the 39 phones (silence not scored) with substitutions, deletions and insertions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.phones import SILENCE


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
