"""Speaker splits: disjoint, stable across releases, balanced, unpredictable without the key."""

from __future__ import annotations

from collections import Counter

import pytest

from speech.splits import SPLITS, SplitSpeaker, assign_splits, split_counts

KEY = b"release-key"


def crowd(n: int, start: int = 0) -> list[SplitSpeaker]:
    genders = ["female", "male"]
    ages = ["0-12", "18-29", "30-44"]
    return [SplitSpeaker(f"spk-{i:05d}", genders[i % 2], ages[(i // 2) % 3], "") for i in range(start, start + n)]


def test_125_speakers_split_about_95_10_10_10():
    counts = split_counts(assign_splits(crowd(125), key=KEY))

    assert counts["train"] in range(93, 98)
    for split in ("dev", "test", "hidden"):
        assert counts[split] in range(9, 12)
    assert sum(counts.values()) == 125


def test_every_split_gets_women_men_and_children():
    speakers = crowd(200)
    assignment = assign_splits(speakers, key=KEY)
    by_split = {name: Counter() for name in SPLITS}
    for s in speakers:
        by_split[assignment[s.speaker_id]][s.stratum[:2]] += 1
    for name in SPLITS:
        assert len(by_split[name]) == 4, (name, by_split[name])  # 2 genders x (children, adults)


def test_a_speaker_keeps_their_split_when_the_crowd_grows():
    first = assign_splits(crowd(100), key=KEY)
    second = assign_splits(crowd(300), key=KEY, previous=first)

    assert all(second[s] == split for s, split in first.items())
    counts = split_counts(second)
    assert counts["train"] == pytest.approx(0.76 * 300, abs=4)


def test_the_same_inputs_give_the_same_splits_and_another_key_others():
    a = assign_splits(crowd(125), key=KEY)
    b = assign_splits(list(reversed(crowd(125))), key=KEY)
    c = assign_splits(crowd(125), key=b"another key")

    assert a == b
    assert a != c


def test_tiny_strata_still_fill_every_split():
    speakers = [SplitSpeaker(f"s{i}", accent=f"accent {i}") for i in range(40)]  # every accent different

    counts = split_counts(assign_splits(speakers, key=KEY))

    assert counts["train"] >= 28 and min(counts.values()) >= 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fractions": {"train": 1.0}}, "must name exactly"),
        ({"fractions": {"train": 0.5, "dev": 0.5, "test": 0.5, "hidden": -0.5}}, "non-negative"),
        ({"previous": {"spk-00001": "validation"}}, "unknown splits"),
    ],
)
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        assign_splits(crowd(5), key=KEY, **kwargs)
