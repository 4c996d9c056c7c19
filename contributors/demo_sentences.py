"""The demo's few hundred sentences for visitors to record (contributors/data/sentences.txt), and the diphones
they must cover. Plain Python (no Django): the coverage test and benchmarks read them without a project."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path

from speech.pronunciation import cmudict_entries

SENTENCES_PATH = Path(__file__).resolve().parent / "data" / "sentences.txt"
SENTENCES_SOURCE = "openphone-sentences"  # Prompt.source of these sentences

# A phone pair is "needed" when it occurs inside at least this many CMUdict words: then it is part of English
# phonotactics, and a recogniser trained on the corpus will meet it. Pairs found only in a handful of entries
# come from foreign names and loanwords (CMUdict is half proper names); at 50 words, 782 of the 1,521 pairs
# are needed. Across word boundaries almost any pair occurs, so the count is taken inside words.
NEEDED_MIN_WORDS = 50


def demo_sentences() -> list[str]:
    """The sentences, in file order (comment lines and blank lines skipped)."""
    lines = SENTENCES_PATH.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def needed_diphones(min_words: int = NEEDED_MIN_WORDS) -> set[tuple[str, str]]:
    """Phone pairs (stress removed) that occur inside at least ``min_words`` CMUdict words."""
    # Counted on CMUdict's own symbols (stress and all), then merged without stress: stripping 126,000 entries'
    # phones one by one would take seconds.
    words_with: Counter[tuple[str, str]] = Counter()
    for pronunciations in cmudict_entries().values():
        words_with.update({(a.rstrip("012"), b.rstrip("012")) for a, b in pairwise(pronunciations[0])})
    return {pair for pair, count in words_with.items() if count >= min_words}
