"""manage.py import_corpus: a synthetic corpus with bad rows, and the shared speechocean762 half."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from contributors.models import Clip, ClipStatus, Contributor, CorpusSource, LexiconEntry, Prompt, Provenance
from tests.factories import speechlike, wav_bytes

pytestmark = pytest.mark.django_db

TOY = {
    "source_name": "toy",
    "licence": "CC-BY-4.0",
    "citation": "Toy corpus (2025).",
    "source_url": "https://toy.example/",
}
HEADER = "utt_id\tspeaker\tgender\tage\taudio\tduration_s\ttext\n"


def write_corpus(root: Path, rows: list[tuple[str, ...]]) -> Path:
    (root / "audio").mkdir(parents=True, exist_ok=True)
    manifest = root / "manifest.tsv"
    manifest.write_text(HEADER + "".join("\t".join(r) + "\n" for r in rows))
    return manifest


def test_import_creates_speakers_prompts_and_clips_and_skips_bad_rows(tmp_path, capsys):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "a1.wav").write_bytes(wav_bytes(speechlike(2.0, seed=1)))
    (tmp_path / "audio" / "a2.wav").write_bytes(wav_bytes(speechlike(3.0, seed=2), rate=16000))
    (tmp_path / "audio" / "b1.wav").write_bytes(wav_bytes(speechlike(2.0, rate=44100, seed=3), rate=44100))
    (tmp_path / "audio" / "bad.wav").write_bytes(b"not audio at all")
    (tmp_path / "lexicon.txt").write_text("ZORBLAX Z AO1 R B L AE2 K S\nHELLO HH AH0 L OW1\n")
    manifest = write_corpus(
        tmp_path,
        [
            ("u1", "s1", "f", "8", "audio/a1.wav", "2.0", "HELLO ZORBLAX"),
            ("u2", "s1", "f", "8", "audio/a2.wav", "3.0", "THE CAT SAT"),
            ("u3", "s2", "m", "31", "audio/b1.wav", "2.0", "THE DOG RAN"),
            ("u4", "s2", "m", "31", "audio/bad.wav", "2.0", "THE DOG SAT"),
            ("u5", "s2", "m", "31", "audio/missing.wav", "2.0", "THE DOG WALKED"),
            ("u6", "s2", "m", "31", "audio/b1.wav", "2.0", "QWXZY PLONK"),
            ("u7", "s2", "m", "31", "../../etc/passwd", "2.0", "THE END"),
        ],
    )

    call_command(
        "import_corpus", str(manifest), audio_root=str(tmp_path), lexicon=str(tmp_path / "lexicon.txt"),
        validated=True, first_language="Mandarin", **TOY,
    )  # fmt: skip

    out = capsys.readouterr()
    assert "7 rows: 3 imported, 0 already present, 4 skipped" in out.out
    for reason in ["u4: The file is not audio", "u5:", "u6: No pronunciation for: qwxzy", "u7:"]:
        assert reason in out.out + out.err
    assert Clip.objects.count() == 3
    assert set(Clip.objects.values_list("status", "provenance", "source__name", "source__licence")) == {
        (ClipStatus.VALID, Provenance.IMPORTED, "toy", "CC-BY-4.0")
    }
    assert all(c.speech_ratio is not None for c in Clip.objects.all())
    s1 = Contributor.objects.get(user__username="toy-s1")
    assert (s1.gender, s1.age_band, s1.first_language) == ("female", "0-12", "Mandarin")
    assert Prompt.objects.get(normalised_text="hello zorblax").phones == [
        ["HH", "AH", "L", "OW"],  # CMUdict stays canonical for the words it knows
        ["Z", "AO", "R", "B", "L", "AE", "K", "S"],
    ]
    assert list(LexiconEntry.objects.values_list("word", flat=True)) == ["zorblax"]


def test_a_second_import_adds_nothing(tmp_path, capsys):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "a1.wav").write_bytes(wav_bytes(speechlike(2.0, seed=1)))
    manifest = write_corpus(tmp_path, [("u1", "s1", "f", "30", "audio/a1.wav", "2.0", "THE CAT SAT")])

    call_command("import_corpus", str(manifest), audio_root=str(tmp_path), **TOY)
    call_command("import_corpus", str(manifest), audio_root=str(tmp_path), **TOY)

    assert "1 rows: 0 imported, 1 already present, 0 skipped" in capsys.readouterr().out
    assert Clip.objects.get().status == ClipStatus.PENDING


def test_a_manifest_without_the_columns_is_a_command_error(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("id\ttext\n1\thello\n")

    with pytest.raises(CommandError, match="lacks the columns: utt_id, speaker"):
        call_command("import_corpus", str(manifest), audio_root=str(tmp_path), **TOY)


def test_a_missing_manifest_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_corpus", str(tmp_path / "nope.tsv"), audio_root=str(tmp_path), **TOY)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"licence": "CC-BY-4.0", "citation": "x"}, "--source-name missing"),
        ({"source_name": "toy", "citation": "x"}, "--licence missing"),
        ({"source_name": "toy", "licence": "CC-BY-4.0"}, "--citation missing"),
        ({"source_name": "toy", "licence": "GPL-forever", "citation": "x"}, "Unknown licence 'GPL-forever'"),
        ({"source_name": "toy", "licence": "CC-BY-NC-4.0", "citation": "x"}, "forbids commercial use"),
        ({"source_name": "openphone", "licence": "CC0-1.0", "citation": "x"}, "recorded on the platform"),
        ({"source_name": "a b", "licence": "CC0-1.0", "citation": "x"}, "must be 1 to 64 letters"),
    ],
)
def test_an_import_without_a_known_source_and_licence_is_refused(tmp_path, options, message):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "a1.wav").write_bytes(wav_bytes(speechlike(2.0, seed=1)))
    manifest = write_corpus(tmp_path, [("u1", "s1", "f", "30", "audio/a1.wav", "2.0", "THE CAT SAT")])

    with pytest.raises(CommandError, match=message):
        call_command("import_corpus", str(manifest), audio_root=str(tmp_path), **options)
    assert not Clip.objects.exists() and not CorpusSource.objects.exists()


def test_the_command_line_exits_non_zero_with_a_sentence_for_an_unknown_licence(tmp_path):
    (tmp_path / "audio").mkdir()
    manifest = write_corpus(tmp_path, [("u1", "s1", "f", "30", "audio/a1.wav", "2.0", "THE CAT SAT")])
    result = subprocess.run(
        [sys.executable, "manage.py", "import_corpus", str(manifest), "--audio-root", str(tmp_path),
         "--source-name", "toy", "--licence", "CC-BY-9.9", "--citation", "Toy."],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "Unknown licence 'CC-BY-9.9': give an SPDX id" in result.stderr


def test_a_source_file_names_the_corpus_and_a_later_import_restates_its_terms(tmp_path, capsys):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "a1.wav").write_bytes(wav_bytes(speechlike(2.0, seed=1)))
    manifest = write_corpus(tmp_path, [("u1", "s1", "f", "30", "audio/a1.wav", "2.0", "THE CAT SAT")])
    source_file = tmp_path / "source.json"
    source_file.write_text(json.dumps({"name": "toy", "licence": "cc-by-sa-4.0", "citation": "Toy (2025)."}))

    call_command("import_corpus", str(manifest), audio_root=str(tmp_path), source_file=str(source_file))
    source = Clip.objects.get().source
    assert (source.name, source.licence, source.citation) == ("toy", "CC-BY-SA-4.0", "Toy (2025).")

    call_command("import_corpus", str(manifest), audio_root=str(tmp_path), source_file=str(source_file),
                 licence="CC-BY-4.0", source_url="https://toy.example/corpus")  # fmt: skip
    source.refresh_from_db()
    assert (source.licence, source.url) == ("CC-BY-4.0", "https://toy.example/corpus")
    assert CorpusSource.objects.count() == 1
