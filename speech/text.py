"""Prompt text normalisation: what a reader says, as lower-case words CMUdict can look up.

Numbers are spelled out (cardinals, ordinals, years, decimals, money, per cent), symbols become words,
punctuation goes, apostrophes inside words stay ("don't"). Hyphenated words are kept whole; the
pronunciation lookup splits them when the dictionary lacks the compound.
"""

from __future__ import annotations

import re
import unicodedata

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip
_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "=": " equals ", "@": " at "}

_TOKEN = re.compile(
    r"(?P<money>[$£€]\d[\d,]*(?:\.\d+)?)"
    r"|(?P<ordinal>\d+(?:st|nd|rd|th)\b)"
    r"|(?P<number>\d[\d,]*(?:\.\d+)?)"
    r"|(?P<word>[^\W\d_]+(?:['\-][^\W\d_]+)*)",
    re.UNICODE,
)


def number_to_words(n: int) -> str:
    """Cardinal English words for a non-negative integer: 1405 -> 'one thousand four hundred five'."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_to_words(rest)}" if rest else "")
    for scale, name in _SCALES:
        if n >= scale:
            head, rest = divmod(n, scale)
            return f"{number_to_words(head)} {name}" + (f" {number_to_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def year_to_words(n: int) -> str:
    """Years as read aloud: 1984 -> 'nineteen eighty four', 2005 -> 'two thousand five'."""
    if 2000 <= n <= 2009:
        return number_to_words(n)
    century, rest = divmod(n, 100)
    if rest == 0:
        return f"{number_to_words(century)} hundred"
    if rest < 10:
        return f"{number_to_words(century)} oh {number_to_words(rest)}"
    return f"{number_to_words(century)} {number_to_words(rest)}"


def ordinal_to_words(n: int) -> str:
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _number_words(token: str) -> str:
    digits = token.replace(",", "")
    if "." in digits:
        whole, frac = digits.split(".", 1)
        return f"{number_to_words(int(whole))} point " + " ".join(_ONES[int(d)] for d in frac)
    value = int(digits)
    # A bare four-digit number between 1100 and 2099 is read as a year ("in 1984"); with a thousands
    # separator ("1,984") it is a quantity.
    if "," not in token and len(digits) == 4 and 1100 <= value <= 2099:
        return year_to_words(value)
    return number_to_words(value)


def _money_words(token: str) -> str:
    unit = {"$": "dollar", "£": "pound", "€": "euro"}[token[0]]
    digits = token[1:].replace(",", "")
    whole, _, cents = digits.partition(".")
    amount = int(whole)
    words = f"{number_to_words(amount)} {unit}{'' if amount == 1 else 's'}"
    if cents and int(cents):
        cent_value = int(cents[:2].ljust(2, "0"))
        words += f" and {number_to_words(cent_value)} cent{'' if cent_value == 1 else 's'}"
    return words


def normalise_words(text: str) -> list[str]:
    """The words a reader says for ``text``, lower case, in order."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u2013", "-").replace("\u2014", " ")
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        token = match.group()
        if kind == "money":
            out.extend(_money_words(token).split())
        elif kind == "ordinal":
            out.extend(ordinal_to_words(int(token[:-2])).split())
        elif kind == "number":
            out.extend(_number_words(token).split())
        else:
            out.append(token.lower().strip("'"))
    return [w for w in out if w]


def display_text(text: str) -> str:
    """The prompt as shown to a reader: whitespace collapsed, otherwise as written."""
    return " ".join(text.split())
