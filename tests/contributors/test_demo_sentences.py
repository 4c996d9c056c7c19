"""The demo's sentences for visitors (contributors/data/sentences.txt) hold every diphone the corpus needs."""

from __future__ import annotations

from contributors.demo_sentences import demo_sentences, needed_diphones
from contributors.services.prompt_selection import coverage_of, diphones_of
from speech.phones import PHONES
from speech.pronunciation import pronounce
from speech.text import normalise_words


def test_the_demo_sentences_are_a_few_hundred_distinct_pronounceable_prompts_covering_every_needed_diphone():
    sentences = demo_sentences()
    assert 250 <= len(sentences) <= 500
    words = [normalise_words(text) for text in sentences]
    assert len({" ".join(w) for w in words}) == len(sentences)  # no two read the same
    phones = [pronounce(w) for w in words]  # raises MissingPronunciations naming any word CMUdict lacks

    needed = needed_diphones()
    assert len(needed) == 782  # the figure the data file and docs/releases.md quote
    covered = set().union(*(diphones_of(p) for p in phones))
    assert needed - covered == set()
    assert coverage_of(phones).phones == len(PHONES)
