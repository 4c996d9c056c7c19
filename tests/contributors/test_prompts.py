"""Text normalisation, pronunciation and prompt creation."""

from __future__ import annotations

import pytest

from contributors.models import LexiconEntry, Prompt
from contributors.services.prompts import lexicon_add, prompt_create
from core.errors import ServiceError
from speech.pronunciation import MissingPronunciations, pronounce
from speech.text import normalise_words, number_to_words, ordinal_to_words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("Don\u2019t stop.", ["don't", "stop"]),
        ("It cost $3.50.", ["it", "cost", "three", "dollars", "and", "fifty", "cents"]),
        ("In 1984 we had 1,984 sheep.", "in nineteen eighty four we had one thousand nine hundred eighty four sheep"),
        ("The 21st of May", ["the", "twenty", "first", "of", "may"]),
        ("Rock & roll, 50%", ["rock", "and", "roll", "fifty", "percent"]),
        ("pi is 3.14", ["pi", "is", "three", "point", "one", "four"]),
        ("a well-known fact", ["a", "well-known", "fact"]),
        ("in 2005", ["in", "two", "thousand", "five"]),
    ],
)
def test_normalise_words(text, words):
    expected = words.split() if isinstance(words, str) else words
    assert normalise_words(text) == expected


def test_numbers_and_ordinals():
    assert number_to_words(0) == "zero"
    assert number_to_words(115) == "one hundred fifteen"
    assert number_to_words(2_000_017) == "two million seventeen"
    assert ordinal_to_words(12) == "twelfth"
    assert ordinal_to_words(40) == "fortieth"
    assert ordinal_to_words(103) == "one hundred third"


def test_pronounce_removes_stress_and_names_every_missing_word():
    assert pronounce(["hello"]) == [["HH", "AH", "L", "OW"]]
    with pytest.raises(MissingPronunciations) as exc:
        pronounce(["hello", "qwxzy", "blorfen", "qwxzy"])
    assert exc.value.words == ["qwxzy", "blorfen"]


def test_hyphenated_words_fall_back_to_their_parts():
    assert pronounce(["cat-dog"]) == [["K", "AE", "T", "D", "AO", "G"]]


@pytest.mark.django_db
def test_prompt_create_stores_words_and_phones_and_dedupes():
    prompt, created = prompt_create(text="The cat sat.", prompt_type="shared")
    again, created_again = prompt_create(text="the CAT sat")

    assert created and not created_again
    assert again.pk == prompt.pk
    assert prompt.words == ["the", "cat", "sat"]
    assert prompt.phones == [["DH", "AH"], ["K", "AE", "T"], ["S", "AE", "T"]]


@pytest.mark.django_db
def test_prompt_with_unknown_words_is_refused_by_name():
    with pytest.raises(ServiceError) as exc:
        prompt_create(text="The zorblax glimphed")
    assert exc.value.code == "prompt_unpronounceable"
    assert exc.value.extra["missing_words"] == ["zorblax", "glimphed"]
    assert "zorblax, glimphed" in exc.value.message
    assert Prompt.objects.count() == 0


@pytest.mark.django_db
def test_explicit_pronunciations_are_accepted_and_join_the_lexicon():
    prompt, _ = prompt_create(text="The zorblax", pronunciations={"zorblax": "Z AO1 R B L AE2 K S"})

    assert prompt.phones[1] == ["Z", "AO", "R", "B", "L", "AE", "K", "S"]
    assert LexiconEntry.objects.get(word="zorblax").phones == ["Z", "AO", "R", "B", "L", "AE", "K", "S"]


@pytest.mark.django_db
def test_the_lexicon_refuses_phones_outside_the_inventory():
    with pytest.raises(ServiceError) as exc:
        lexicon_add(entries={"zorblax": "Z QQ R"})
    assert exc.value.code == "pronunciation_invalid"
    assert "QQ" in exc.value.message


@pytest.mark.django_db
@pytest.mark.parametrize(("text", "code"), [("", "prompt_empty"), ("?!", "prompt_empty")])
def test_empty_prompts_are_refused(text, code):
    with pytest.raises(ServiceError) as exc:
        prompt_create(text=text)
    assert exc.value.code == code
