"""prompts_import (normalisation, CMUdict, the operator lexicon, refusals by line) and prompts_select (diphones)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from contributors.models import Prompt, PromptType
from contributors.services.prompt_selection import diphones_of, greedy_cover
from contributors.services.prompts import lexicon_add

pytestmark = pytest.mark.django_db


def test_prompts_import_normalises_pronounces_and_reports_bad_lines(tmp_path, capsys):
    lexicon_add(entries={"zorblax": "Z AO1 R B L AE2 K S"})
    path = tmp_path / "sentences.txt"
    path.write_text(
        "The ticket costs $12, and the train leaves at 8.\n"
        "\n"
        "A ZORBLAX sat on the mat!\n"
        "Qwxzy plonk frimble.\n"
        "the ticket costs twelve dollars and the train leaves at eight\n"
    )
    call_command("prompts_import", str(path))
    out = capsys.readouterr()
    assert "4 lines: 2 prompts created, 1 already present, 1 refused." in out.out
    assert "line 4: No pronunciation for: qwxzy, plonk, frimble" in out.err
    ticket = Prompt.objects.get(text__startswith="The ticket")
    expected = "the ticket costs twelve dollars and the train leaves at eight"
    assert ticket.words == expected.split(" ")
    assert ticket.phones[0] == ["DH", "AH"] and ticket.source == "sentences"
    assert Prompt.objects.get(text__startswith="A ZORBLAX").phones[1] == ["Z", "AO", "R", "B", "L", "AE", "K", "S"]


def test_prompts_import_reads_tsv_types_and_refuses_a_missing_file(tmp_path, capsys):
    path = tmp_path / "p.tsv"
    path.write_text("text\ttype\nShe had your dark suit.\tshared\nDon't ask me to carry an oily rag.\t\n")
    call_command("prompts_import", str(path), "--type", "coverage")
    assert dict(Prompt.objects.values_list("text", "prompt_type")) == {
        "She had your dark suit.": PromptType.SHARED,
        "Don't ask me to carry an oily rag.": PromptType.COVERAGE,
    }
    with pytest.raises(CommandError, match="does not exist"):
        call_command("prompts_import", str(tmp_path / "missing.txt"))
    bad = tmp_path / "bad.txt"
    bad.write_text("Qwxzy.\n")
    with pytest.raises(CommandError, match="No line could be imported"):
        call_command("prompts_import", str(bad))


def test_greedy_cover_picks_the_sentence_adding_most_diphones_first():
    a = [["AA", "B"], ["K"]]  # AA-B, B-K
    b = [["AA", "B", "K", "D", "EH"]]  # AA-B, B-K, K-D, D-EH
    c = [["D", "EH"]]  # D-EH
    assert diphones_of(a) == {("AA", "B"), ("B", "K")}
    assert greedy_cover([a, b, c], target=3, covered=set()) == [1]  # then nothing new: stops early
    assert greedy_cover([a, c], target=1, covered={("AA", "B")}) == [1]  # a tie: the shorter one
    assert greedy_cover([a, c], target=2, covered={("AA", "B"), ("D", "EH")}) == [0]


def test_prompts_select_prints_coverage_before_and_after_and_applies(tmp_path, capsys):
    path = tmp_path / "s.txt"
    path.write_text(
        "The quick brown fox jumps over the lazy dog.\nA cat.\nThe cat.\n"
        "Joyful voices echoed through the cathedral during the annual festival.\n"
    )
    call_command("prompts_import", str(path))
    call_command("prompts_select", "--target", "2")
    out = capsys.readouterr().out
    assert "Coverage before: 0/39 phones, 0/1521 diphones" in out and "Coverage after:" in out
    assert "quick brown fox" in out and "A cat." not in out
    assert not Prompt.objects.filter(prompt_type=PromptType.COVERAGE).exists()
    call_command("prompts_select", "--target", "1", "--apply")
    assert Prompt.objects.filter(prompt_type=PromptType.COVERAGE).count() == 1
    with pytest.raises(CommandError, match="at least 1"):
        call_command("prompts_select", "--target", "0")
