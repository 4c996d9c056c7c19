"""Prompts and the operator lexicon."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import IntegrityError, transaction

from contributors.models import LexiconEntry, Prompt, PromptType
from core.errors import ServiceError
from speech.phones import parse_pronunciation
from speech.pronunciation import MissingPronunciations, pronounce
from speech.text import display_text, normalise_words


def lexicon_as_mapping() -> dict[str, list[str]]:
    return dict(LexiconEntry.objects.values_list("word", "phones"))


def lexicon_add(*, entries: Mapping[str, str], source: str = "operator") -> int:
    """Add or correct pronunciations ('WORD' -> 'HH AH0 L OW1'); returns how many were written."""
    parsed: dict[str, list[str]] = {}
    for word, text in entries.items():
        try:
            parsed[word.lower()] = parse_pronunciation(text)
        except ValueError as exc:
            raise ServiceError("pronunciation_invalid", f"{word}: {exc}.") from exc
    with transaction.atomic():
        for word, phones in parsed.items():
            LexiconEntry.objects.update_or_create(word=word, defaults={"phones": phones, "source": source})
    return len(parsed)


# Atomic: the pronunciations it adds to the lexicon are written before the prompt can still be refused (another
# word unknown, the text invalid); a refusal must leave no lexicon rows behind.
@transaction.atomic
def prompt_create(
    *,
    text: str,
    prompt_type: str = PromptType.DIVERSE,
    pronunciations: Mapping[str, str] | None = None,
    source: str = "",
    lexicon: Mapping[str, list[str]] | None = None,
) -> tuple[Prompt, bool]:
    """Normalise and pronounce a sentence; returns (prompt, created). The same normalised words give
    back the existing prompt. Words that neither the lexicon nor CMUdict know are refused by name,
    unless ``pronunciations`` supplies them (they then join the lexicon).

    ``lexicon`` lets a bulk caller pass the lexicon once instead of reading it per prompt."""
    if prompt_type not in PromptType.values:
        raise ServiceError("prompt_type_unknown", f"Prompt type must be one of {', '.join(PromptType.values)}.")
    words = normalise_words(text)
    if not words:
        raise ServiceError("prompt_empty", "The prompt has no words to read.")
    normalised = " ".join(words)
    existing = Prompt.objects.filter(normalised_text=normalised).first()
    if existing is not None:
        return existing, False
    if pronunciations:
        lexicon_add(entries=pronunciations, source=source or "operator")
        lexicon = None
    lexicon = lexicon if lexicon is not None else lexicon_as_mapping()
    try:
        phones = pronounce(words, lexicon)
    except MissingPronunciations as exc:
        raise ServiceError(
            "prompt_unpronounceable",
            f"No pronunciation for: {', '.join(exc.words)}. Add them to the lexicon or give pronunciations.",
            missing_words=exc.words,
        ) from exc
    prompt = Prompt(
        text=display_text(text),
        normalised_text=normalised,
        words=words,
        phones=phones,
        prompt_type=prompt_type,
        source=source,
    )
    prompt.full_clean(exclude=["normalised_text"])
    try:
        with transaction.atomic():
            prompt.save()
    except IntegrityError:  # created concurrently: the same sentence, so the same prompt
        return Prompt.objects.get(normalised_text=normalised), False
    return prompt, True
