"""Canonical phones for a transcript: CMUdict first, a corpus lexicon for the words it lacks; HMM state ids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from speech.phones import INVENTORY, SILENCE, parse_pronunciation
from speech.pronunciation import cmudict_pronunciation, pronounce
from speech.text import normalise_words

STATES_PER_PHONE = 3
N_PHONES = len(INVENTORY)  # 39 phones + silence, in the output order every model uses
N_STATES = STATES_PER_PHONE * N_PHONES
PHONE_INDEX = {phone: i for i, phone in enumerate(INVENTORY)}
SILENCE_INDEX = PHONE_INDEX[SILENCE]


def read_lexicon(path: str | Path) -> dict[str, list[str]]:
    """'WORD PH1 PH2 ...' lines -> lower-case word -> stressless phones; the first pronunciation wins."""
    lexicon: dict[str, list[str]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        word, *phones = line.split()
        if phones:
            lexicon.setdefault(word.lower(), parse_pronunciation(" ".join(phones)))
    return lexicon


def fallback_lexicon(lexicon: Mapping[str, Sequence[str]], words: set[str]) -> dict[str, list[str]]:
    """Only the entries for words CMUdict lacks: CMUdict stays the reference pronunciation."""
    return {w: list(lexicon[w]) for w in words if w in lexicon and cmudict_pronunciation(w) is None}


def transcript_words(text: str, lexicon: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Transcript -> one stressless phone list per word (raises MissingPronunciations)."""
    return pronounce(normalise_words(text), lexicon)


def phone_ids(words: Sequence[Sequence[str]]) -> list[int]:
    return [PHONE_INDEX[p] for word in words for p in word]


def state_to_phone(state: int) -> int:
    return state // STATES_PER_PHONE
