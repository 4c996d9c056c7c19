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
* **Hidden only from eligible speakers.** ``hidden_eligible`` names the speakers who may be hidden (the release
  builder passes those recorded on the platform: an imported corpus is public elsewhere, so its speakers can be
  recognised by matching sentence texts). Nobody else is placed in hidden, and a speaker an earlier release made
  hidden who is no longer eligible is placed again among the public splits.
* **A hidden split of at least ``min_hidden`` speakers, or none.** When the balanced placement leaves hidden
  under ``min_hidden``, new eligible speakers (train's first, in keyed order) are moved in, as long as hidden
  stays at most half of all speakers; otherwise the new speakers placed in hidden go to the public splits, and
  ``hidden_split_formed`` tells the caller that the release has no hidden split (any speaker an earlier release
  made hidden keeps that split and is held back by the caller, never published).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

SPLITS: tuple[str, ...] = ("train", "dev", "test", "hidden")
PUBLIC_SPLITS: tuple[str, ...] = ("train", "dev", "test")
# About 95 / 10 / 10 / 10 of 125 speakers: TIMIT's proportions, with a hidden test set beside the public one.
DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.76, "dev": 0.08, "test": 0.08, "hidden": 0.08}
CHILD_AGE_BANDS = frozenset({"0-12"})
HIDDEN_MAX_SHARE = 0.5  # a hidden split topped up to its minimum never takes more than this share of speakers


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
    hidden_eligible: Collection[str] | None = None,
    min_hidden: int = 0,
) -> dict[str, str]:
    """speaker id -> split for every speaker given. Raises ValueError on a bad split name or fractions.
    ``hidden_eligible`` None: everyone may be hidden."""
    _check_fractions(fractions)
    previous = previous or {}
    unknown = {s for s in previous.values() if s not in SPLITS}
    if unknown:
        raise ValueError(f"unknown splits in previous: {', '.join(sorted(unknown))}")

    speakers = list(speakers)
    eligible = {s.speaker_id for s in speakers} if hidden_eligible is None else set(hidden_eligible)
    # An earlier hidden placement of a speaker who may not be hidden is not kept: see the module docstring.
    previous = {sid: split for sid, split in previous.items() if split != "hidden" or sid in eligible}
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
            def deficit(
                name: str, n_s: int = in_stratum, n_a: int = in_all, here: Counter[str] = placed
            ) -> tuple[float, int]:
                return fractions[name] * n_s - here[name] + fractions[name] * n_a - overall[name], -SPLITS.index(name)

            split = max(SPLITS if speaker.speaker_id in eligible else PUBLIC_SPLITS, key=deficit)
            assignment[speaker.speaker_id] = split
            placed[split] += 1
            overall[split] += 1
    _hidden_minimum(
        assignment, speakers, key=key, previous=previous, eligible=eligible, minimum=min_hidden, fractions=fractions
    )
    return assignment


def _hidden_minimum(
    assignment: dict[str, str],
    speakers: list[SplitSpeaker],
    *,
    key: bytes,
    previous: Mapping[str, str],
    eligible: set[str],
    minimum: int,
    fractions: Mapping[str, float],
) -> None:
    """Top hidden up to ``minimum`` speakers from the new eligible ones, or move its new speakers out (in place)."""
    hidden = [sid for sid, split in assignment.items() if split == "hidden"]
    if len(hidden) >= minimum:
        return
    new = [s.speaker_id for s in speakers if s.speaker_id not in previous]
    candidates = sorted(
        (sid for sid in new if sid in eligible and assignment[sid] != "hidden"),
        key=lambda sid: (assignment[sid] != "train", _order_key(key, sid)),
    )
    needed = minimum - len(hidden)
    if len(candidates) >= needed and minimum <= HIDDEN_MAX_SHARE * len(assignment):
        for sid in candidates[:needed]:
            assignment[sid] = "hidden"
        return
    # No hidden split this time: its new speakers go to the public split furthest below its share.
    counts = Counter(split for split in assignment.values() if split != "hidden")
    for sid in sorted((sid for sid in new if assignment[sid] == "hidden"), key=lambda sid: _order_key(key, sid)):
        total = sum(counts.values()) + 1

        def deficit(name: str, n: int = total) -> tuple[float, int]:
            return fractions[name] * n - counts[name], -PUBLIC_SPLITS.index(name)

        split = max(PUBLIC_SPLITS, key=deficit)
        assignment[sid] = split
        counts[split] += 1


def hidden_split_formed(assignment: Mapping[str, str], *, min_hidden: int) -> bool:
    """Whether the assignment has a hidden split the release may use (at least ``min_hidden`` speakers)."""
    return sum(1 for split in assignment.values() if split == "hidden") >= max(min_hidden, 1)


def split_counts(assignment: Mapping[str, str]) -> dict[str, int]:
    counted = Counter(assignment.values())
    return {name: counted.get(name, 0) for name in SPLITS}
