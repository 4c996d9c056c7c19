"""The hidden split: drawn only from eligible (platform-recorded) speakers, at least ``min_hidden`` of them or none."""

from __future__ import annotations

from speech.splits import PUBLIC_SPLITS, SplitSpeaker, assign_splits, hidden_split_formed, split_counts

KEY = b"release-key"


def crowd(n: int, start: int = 0) -> list[SplitSpeaker]:
    return [SplitSpeaker(f"spk-{i:05d}", ("female", "male")[i % 2], "30-44", "") for i in range(start, start + n)]


def test_only_eligible_speakers_are_hidden():
    speakers = crowd(125)
    eligible = {s.speaker_id for s in speakers[:40]}
    assignment = assign_splits(speakers, key=KEY, hidden_eligible=eligible, min_hidden=5)
    hidden = {s for s, v in assignment.items() if v == "hidden"}
    assert hidden and hidden <= eligible
    assert len(hidden) >= 5 and hidden_split_formed(assignment, min_hidden=5)


def test_no_eligible_speaker_means_no_hidden_split():
    assignment = assign_splits(crowd(125), key=KEY, hidden_eligible=set(), min_hidden=5)
    assert split_counts(assignment)["hidden"] == 0 and not hidden_split_formed(assignment, min_hidden=5)
    assert set(assignment.values()) == set(PUBLIC_SPLITS)


def test_a_small_hidden_split_is_topped_up_to_the_minimum_or_not_formed():
    speakers = crowd(14)
    topped = assign_splits(speakers, key=KEY, min_hidden=5)
    assert split_counts(topped)["hidden"] == 5
    # Only 3 eligible speakers: no hidden split, and nobody is left in hidden.
    few = {s.speaker_id for s in speakers[:3]}
    none = assign_splits(speakers, key=KEY, hidden_eligible=few, min_hidden=5)
    assert split_counts(none)["hidden"] == 0
    # Too small a release for a hidden split of 5 (it would take more than half the speakers).
    tiny = assign_splits(crowd(8), key=KEY, min_hidden=5)
    assert split_counts(tiny)["hidden"] == 0


def test_a_previously_hidden_speaker_who_is_no_longer_eligible_moves_to_a_public_split():
    speakers = crowd(30)
    previous = {"spk-00000": "hidden", "spk-00001": "hidden", "spk-00002": "test"}
    eligible = {s.speaker_id for s in speakers} - {"spk-00000"}
    assignment = assign_splits(speakers, key=KEY, previous=previous, hidden_eligible=eligible, min_hidden=5)
    assert assignment["spk-00000"] in PUBLIC_SPLITS
    assert assignment["spk-00001"] == "hidden" and assignment["spk-00002"] == "test"  # the others keep theirs
    assert split_counts(assignment)["hidden"] >= 5


def test_kept_hidden_speakers_stay_hidden_when_too_few_are_left():
    """Never published: the release builder holds them back; new speakers are not made hidden to join them."""
    speakers = crowd(30)
    previous = {"spk-00000": "hidden", "spk-00001": "hidden"}
    eligible = {"spk-00000", "spk-00001", "spk-00002"}
    assignment = assign_splits(speakers, key=KEY, previous=previous, hidden_eligible=eligible, min_hidden=5)
    assert {s for s, v in assignment.items() if v == "hidden"} == {"spk-00000", "spk-00001"}
    assert not hidden_split_formed(assignment, min_hidden=5)
