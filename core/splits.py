"""Speaker-disjoint, stable, balanced splits: train / dev / test / hidden.

Plain Python, no Django: the release builder and `training.ml` (before releases exist) use the same code.

* **Disjoint.** A speaker's clips all go to one split.
* **Stable.** A speaker keeps the split a previous release gave them (``previous``); only new speakers are
  placed. The order in which new speakers are considered is a keyed hash (HMAC-SHA256 with the release
  key) of their pseudonymous id, so nobody can choose their split by choosing their id, and the same
  inputs always give the same answer.
* **Balanced.** New speakers are placed stratum by stratum (gender, children or adults, accent): each goes
  to the split furthest below its target share *within that stratum*, counting the speakers already
  there, so every split gets its share of women, men, children and accents where the numbers allow.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SPLITS: tuple[str, ...] = ("train", "dev", "test", "hidden")
PUBLIC_SPLITS: tuple[str, ...] = ("train", "dev", "test")
# About 95 / 10 / 10 / 10 of 125 speakers: TIMIT's proportions, with a hidden test set beside the public one.
DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.76, "dev": 0.08, "test": 0.08, "hidden": 0.08}
CHILD_AGE_BANDS = frozenset({"0-12"})


@dataclass(frozen=True)
class SplitSpeaker:
    speaker_id: str
    gender: str = ""
    age_band: str = ""
    accent: str = ""

    @property
    def stratum(self) -> tuple[str, str, str]:
        age_group = "child" if self.age_band in CHILD_AGE_BANDS else "adult" if self.age_band else ""
        return (self.gender, age_group, self.accent.strip().lower())


def _order_key(key: bytes, speaker_id: str) -> bytes:
    return hmac.new(key, speaker_id.encode(), hashlib.sha256).digest()


def _check_fractions(fractions: Mapping[str, float]) -> None:
    if set(fractions) != set(SPLITS):
        raise ValueError(f"fractions must name exactly {', '.join(SPLITS)}")
    if any(f < 0 for f in fractions.values()) or abs(sum(fractions.values()) - 1.0) > 1e-9:
        raise ValueError("fractions must be non-negative and sum to 1")


def assign_splits(
    speakers: Iterable[SplitSpeaker],
    *,
    key: bytes,
    previous: Mapping[str, str] | None = None,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
) -> dict[str, str]:
    """speaker id -> split for every speaker given. Raises ValueError on a bad split name or fractions."""
    _check_fractions(fractions)
    previous = previous or {}
    unknown = {s for s in previous.values() if s not in SPLITS}
    if unknown:
        raise ValueError(f"unknown splits in previous: {', '.join(sorted(unknown))}")

    speakers = list(speakers)
    assignment: dict[str, str] = {}
    counts: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    new_by_stratum: dict[tuple[str, str, str], list[SplitSpeaker]] = defaultdict(list)
    for speaker in speakers:
        kept = previous.get(speaker.speaker_id)
        if kept is not None:
            assignment[speaker.speaker_id] = kept
            counts[speaker.stratum][kept] += 1
        else:
            new_by_stratum[speaker.stratum].append(speaker)

    overall: Counter[str] = Counter(assignment.values())
    # Largest strata first, so the scarce small ones fill the deficits the big ones leave.
    for stratum in sorted(new_by_stratum, key=lambda s: (-len(new_by_stratum[s]), s)):
        placed = counts[stratum]
        for speaker in sorted(new_by_stratum[stratum], key=lambda s: _order_key(key, s.speaker_id)):
            in_stratum = sum(placed.values()) + 1
            in_all = sum(overall.values()) + 1

            # Below target within the stratum and overall, once this speaker is counted: the overall term
            # keeps the proportions when strata are tiny (free-text accents), the stratum term balances
            # the big ones. Ties go to the split listed first (train).
            split = max(
                SPLITS,
                key=lambda name, n_s=in_stratum, n_a=in_all, here=placed: (
                    fractions[name] * n_s - here[name] + fractions[name] * n_a - overall[name],
                    -SPLITS.index(name),
                ),
            )
            assignment[speaker.speaker_id] = split
            placed[split] += 1
            overall[split] += 1
    return assignment


def split_counts(assignment: Mapping[str, str]) -> dict[str, int]:
    counted = Counter(assignment.values())
    return {name: counted.get(name, 0) for name in SPLITS}
