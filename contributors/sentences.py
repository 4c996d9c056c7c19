"""What a volunteer's proposed sentence must look like before anyone reviews it: the rules and the text checks.

Plain Python, no database: the pronunciation and duplicate checks, which need the lexicon and the prompts,
live in contributors.services.proposals.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from core.errors import ServiceError


@dataclass(frozen=True)
class SentenceRules:
    """settings.SENTENCES, with defaults. The lengths follow Common Voice's sentence rules: a sentence is read
    in one breath, well inside a clip's 15 s."""

    reports_to_hold: int = 3  # distinct readers whose open reports take a prompt out of service
    approvals_to_accept: int = 2
    rejections_to_retire: int = 2
    proposals_per_day: int = 20  # per contributor, counted over the last 24 hours, whatever became of them
    min_words: int = 3
    max_words: int = 14
    max_chars: int = 125


# Letters, spaces and the punctuation of ordinary prose (typographic quotes and dashes included). Digits are
# refused: "1984" is a year or a quantity, "3:15" a time or a ratio, and the reader's choice would not match the
# words the prompt records; symbols (&, %, @) likewise.
_ALLOWED = re.compile(r"[A-Za-z .,;:!?'\"()\-\u2018\u2019\u201c\u201d\u2013\u2014]")
_ABBREVIATION = re.compile(r"\b[A-Z]{2,}\b")  # "NASA", "BBC": read as letters or as a word, nobody knows which
# Shortened words with a full stop ("Dr.", "St.", "etc.") and dotted initials ("e.g.", "U.S.", "a.m."): "St." is
# "Street" or "Saint", "Dr." "Doctor" or "Drive", and the prompt's words would record the letters. Only forms that
# are not also English words, so "no." and "sun." at the end of a sentence stay allowed.
_SHORTENED = re.compile(
    r"\b(?:[A-Za-z]\.){2,}"
    r"|\b(?:Mr|Mrs|Ms|Dr|St|Prof|Jr|Sr|Mt|Ave|Rd|Blvd|Gen|Capt|Sgt|Lt|Col|Rev|Hon|Inc|Ltd|Jan|Feb|Aug|Sept|Oct|Nov"
    r"|Dec|Tues|Thurs|Fri)\."
    r"|\b(?:etc|vs|approx|dept|misc)\.",
)


def sentence_text_check(text: str, rules: SentenceRules) -> str:
    """The sentence as it will be shown (NFC, whitespace collapsed); raises ServiceError on the first problem."""
    cleaned = " ".join(unicodedata.normalize("NFC", text).split())
    if not cleaned:
        raise ServiceError("sentence_empty", "Write a sentence to propose.")
    if len(cleaned) > rules.max_chars:
        raise ServiceError(
            "sentence_too_long", f"A sentence has at most {rules.max_chars} characters; this one has {len(cleaned)}."
        )
    refused = sorted({c for c in cleaned if not _ALLOWED.fullmatch(c)})
    if any(c.isdigit() for c in refused):
        raise ServiceError(
            "sentence_digits", "Write numbers as words (“twelve”, not “12”): readers say digits differently."
        )
    if refused:
        shown = ", ".join(repr(c) if c.isprintable() else f"U+{ord(c):04X}" for c in refused)
        raise ServiceError(
            "sentence_characters",
            f"Use English letters and ordinary punctuation only; not allowed: {shown}.",
            characters=refused,
        )
    abbreviation = _ABBREVIATION.search(cleaned) or _SHORTENED.search(cleaned)
    if abbreviation:
        raise ServiceError(
            "sentence_abbreviation",
            f"Spell out “{abbreviation.group()}”: readers say abbreviations in different ways.",
        )
    words = len(re.findall(r"[A-Za-z]+(?:['\u2019\-][A-Za-z]+)*", cleaned))
    if words < rules.min_words or words > rules.max_words:
        raise ServiceError(
            "sentence_length",
            f"A sentence has {rules.min_words} to {rules.max_words} words; this one has {words}.",
            words=words,
        )
    return cleaned
