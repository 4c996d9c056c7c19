"""manage.py import_corpus: a synthetic corpus with bad rows, and the shared speechocean762 half."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from contributors.models import Clip, ClipStatus, Contributor, LexiconEntry, Prompt, Provenance
from tests.factories import speechlike, wav_bytes

pytestmark = pytest.mark.django_db

SHARED = (
    Path(os.environ.get("SHARED_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "data"))
    / "speechocean762-train"
)
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
        validated=True, source="toy", first_language="Mandarin",
    )  # fmt: skip

    out = capsys.readouterr()
    assert "7 rows: 3 imported, 0 already present, 4 skipped" in out.out
    for reason in ["u4: The file is not audio", "u5:", "u6: No pronunciation for: qwxzy", "u7:"]:
        assert reason in out.out + out.err
    assert Clip.objects.count() == 3
    assert set(Clip.objects.values_list("status", "provenance")) == {(ClipStatus.VALID, Provenance.IMPORTED)}
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

    call_command("import_corpus", str(manifest), audio_root=str(tmp_path))
    call_command("import_corpus", str(manifest), audio_root=str(tmp_path))

    assert "1 rows: 0 imported, 1 already present, 0 skipped" in capsys.readouterr().out
    assert Clip.objects.get().status == ClipStatus.PENDING


def test_a_manifest_without_the_columns_is_a_command_error(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("id\ttext\n1\thello\n")

    with pytest.raises(CommandError, match="lacks the columns: utt_id, speaker"):
        call_command("import_corpus", str(manifest), audio_root=str(tmp_path))


def test_a_missing_manifest_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_corpus", str(tmp_path / "nope.tsv"), audio_root=str(tmp_path))


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/speechocean762-train is not on this machine")
def test_the_shared_speechocean762_half_imports_completely(capsys):
    call_command(
        "import_corpus", str(SHARED / "manifest.tsv"), audio_root=str(SHARED), lexicon=str(SHARED / "lexicon.txt"),
        validated=True, first_language="Mandarin", verbosity=0,
    )  # fmt: skip

    assert "2500 rows: 2500 imported, 0 already present, 0 skipped" in capsys.readouterr().out
    assert Contributor.objects.count() == 125
    assert Clip.objects.filter(status=ClipStatus.VALID).count() == 2500
    hours = sum(Clip.objects.values_list("duration_s", flat=True)) / 3600
    assert hours == pytest.approx(2.88, abs=0.01)
