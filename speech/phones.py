"""The phone inventory: the 39 CMUdict (ARPAbet) phones without stress, plus silence.

Plain Python, no Django: prompts, releases and `training.ml` all read the same list, in this order,
which is the order of the output units every model and submission uses.
"""

from __future__ import annotations

import re

SILENCE = "sil"

PHONES: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH",
    "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V",
    "W", "Y", "Z", "ZH",
)  # fmt: skip

INVENTORY: tuple[str, ...] = (*PHONES, SILENCE)

_STRESS = re.compile(r"[012]$")
_PHONE_SET = frozenset(PHONES)


def strip_stress(phone: str) -> str:
    """'AH0' -> 'AH'."""
    return _STRESS.sub("", phone.upper())


def parse_pronunciation(text: str) -> list[str]:
    """Parse 'HH AH0 L OW1' into stressless phones, refusing anything outside the inventory."""
    phones = [strip_stress(token) for token in text.split()]
    if not phones:
        raise ValueError("a pronunciation needs at least one phone")
    unknown = sorted({p for p in phones if p not in _PHONE_SET})
    if unknown:
        raise ValueError(f"not ARPAbet phones: {', '.join(unknown)}")
    return phones
