"""Strict reading of user input: ids and counts in ASCII digits only, free text without control characters.

Python's ``int()`` reads far more than a client should send: other scripts' digits (``"\\u0661"``, ``"\\uff11"``),
underscores (``"1_0"``), surrounding whitespace (``" 1 "``), a sign. Accepting those means one row answers to
many spellings (caches, logs and rate limits keyed on the raw value disagree) and error messages echo back
text nobody meant. Every id or count parsed from a request goes through :func:`parse_id` or
:class:`StrictIntegerField`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.core.exceptions import ValidationError
from rest_framework import serializers

from core.errors import ServiceError

# Primary keys are 64-bit signed integers; 19 digits reach past the largest, which is checked after.
_DIGITS = re.compile(r"[0-9]{1,19}")
MAX_ID = 2**63 - 1


def parse_id(value: object) -> int | None:
    """The positive id ``value`` spells, or None. An int (not a bool) is taken as it is; a string must be ASCII
    digits and nothing else. Anything else, zero or past the 64-bit range is None, for the caller to refuse
    with its own code."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    else:
        return None
    return number if 0 < number <= MAX_ID else None


BIGINT_MAX = 2**63 - 1  # PostgreSQL's bigint and SQLite's integer: every id and count the API stores or looks up


class StrictIntegerField(serializers.IntegerField):
    """DRF's IntegerField reads strings with ``int()`` (and ``"1.0"``, and ``true`` as 1); this one takes a JSON
    integer or a string of ASCII digits (an optional leading ``-`` for fields that allow negatives), within a
    64-bit integer unless the field narrows it: a larger one, used in a query, raised OverflowError (a 500)."""

    default_error_messages = {"invalid": "A whole number written in ASCII digits is required."}
    _pattern = re.compile(r"-?[0-9]{1,19}")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_value", BIGINT_MAX)
        kwargs.setdefault("min_value", -BIGINT_MAX - 1)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        if isinstance(data, str) and not self._pattern.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)


# --- free text ---------------------------------------------------------------------------------------------------
# Invisible characters that change how text reads or breaks: C0/C1 controls and DEL (Cc), line and paragraph
# separators (Zl, Zp), surrogates, private-use and unassigned code points (Cs, Co, Cn), and the bidirectional
# overrides and isolates that reorder what a reader sees ("Trojan Source"). Profile text is published in every
# release's metadata (TSV, JSONL, Kaldi files), where a tab or newline splits a row. Zero-width joiners (Cf) stay
# allowed: some scripts need them to spell words.
_REFUSED_CATEGORIES = {"Cc", "Zl", "Zp", "Cs", "Co", "Cn"}
_BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def control_characters(value: str) -> list[str]:
    """The code points of ``value`` a single line of published text must not hold, as ``U+XXXX``, in order."""
    return [
        f"U+{ord(char):04X}"
        for char in value
        if unicodedata.category(char) in _REFUSED_CATEGORIES or char in _BIDI_CONTROLS
    ]


def _message(label: str, found: list[str]) -> str:
    shown = ", ".join(dict.fromkeys(found))
    return f"{label} holds control or invisible characters ({shown}); use printable text on one line."


def refuse_control_characters(value: str, *, field: str, multiline: bool = False) -> None:
    """Raise 400 ``text_control_characters`` (naming the field and the code points) if ``value`` holds any;
    ``multiline`` text (a description) may also hold line breaks and tabs."""
    text = value or ""
    if multiline:
        text = text.translate({ord("\n"): None, ord("\r"): None, ord("\t"): None})
    found = control_characters(text)
    if found:
        label = field if not multiline else f"{field} (line breaks and tabs aside)"
        raise ServiceError("text_control_characters", _message(label, found), field=field)


def report_note(note: object, *, limit: int) -> str:
    """A note to the operators as stored: runs of whitespace made one space; refused with 400 ``note_invalid``
    when it is not text or holds control or invisible characters (a bidi override hides what it says in the
    admin), and with 400 ``note_too_long`` past ``limit`` characters."""
    if note is None:
        return ""
    if not isinstance(note, str):
        raise ServiceError("note_invalid", "The note is plain text.")
    note = " ".join(note.split())
    found = control_characters(note)
    if found:
        raise ServiceError("note_invalid", _message("The note", found))
    if len(note) > limit:
        raise ServiceError("note_too_long", f"Keep the note under {limit} characters.")
    return note


def validate_printable(value: str) -> None:
    """The same rule as a Django validator, for forms (the pages, the admin)."""
    found = control_characters(value or "")
    if found:
        raise ValidationError(_message("This field", found), code="text_control_characters")
