"""The TIMIT tree loads in the TIMIT tools researchers use (NLTK's TimitCorpusReader, Lhotse's TIMIT preparer) and
their words, phones and speakers are the manifest's; its audio is RIFF PCM of the stored samples; its alignments
are made while the release is built, and the release is not ready without them."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
import soundfile as sf
from django.core.files.storage import default_storage

from benchmark.models import Release
from benchmark.releases import exports
from benchmark.releases.services import release_build, release_create
from contributors.models import Clip
from tests.benchmark.conftest import build, release_root

pytestmark = pytest.mark.django_db
SILENCES = {"h#", "pau"}


def manifest(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def spoken_phones(row: dict) -> list[str]:
    return [p.lower() for word in row["phones"] for p in word]


def place(row: dict) -> tuple[str, str, str, str]:
    """(TRAIN or TEST, DR<n>, speaker, utterance) from the manifest's audio path."""
    *_, folder, region, speaker, file = Path(row["audio"]).parts
    return folder, region, speaker, Path(file).stem


def test_the_tree_has_timit_layout_names_and_riff_audio(release, settings):
    root = release_root(settings, release)
    rows = manifest(root)
    for row in rows:
        folder, region, speaker, utterance = place(row)
        assert row["audio"].startswith("timit/data/") and row["audio"].endswith(".WAV")
        assert folder == {"train": "TRAIN", "dev": "TEST", "test": "TEST"}[row["split"]]
        assert re.fullmatch(r"DR\d+", region) and re.fullmatch(r"[MFX][A-Z0-9]+", speaker)
        assert re.fullmatch(r"S[AXI]\d+", utterance)
        assert speaker[0] == {"male": "M", "female": "F"}.get(row["gender"], "X")
    row = rows[0]
    wav = root / row["audio"]
    assert wav.read_bytes()[:4] == b"RIFF" and wav.read_bytes()[8:12] == b"WAVE"
    info = sf.info(str(wav))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 16000, 1)
    clip = Clip.objects.get(sha256=row["sha256"])
    with default_storage.open(clip.audio.name, "rb") as handle:
        stored, _ = sf.read(handle, dtype="int16")
    assert (sf.read(str(wav), dtype="int16")[0] == stored).all() and len(stored) == row["num_samples"]
    assert wav.with_suffix(".TXT").read_text() == f"0 {row['num_samples']} {row['text']}\n"
    # Dev and test speakers share TEST, as TIMIT's dev set does; DOC's lists tell them apart.
    doc = root / "timit/data/DOC"
    for split in ("dev", "test"):
        listed = set(doc.joinpath(f"{split}_spk.list").read_text().split())
        assert listed == {place(r)[2].lower() for r in rows if r["split"] == split} and listed


def test_nltk_timit_reader_gives_the_manifests_words_phones_and_speakers(release, settings, monkeypatch):
    nltk = pytest.importorskip("nltk")
    from nltk.corpus.reader.timit import TimitCorpusReader
    from nltk.data import FileSystemPathPointer

    root = release_root(settings, release)
    view = root / "timit" / "nltk"
    monkeypatch.setattr(nltk.data, "path", [*nltk.data.path, str(view)])  # NLTK reads only from its data path
    reader = TimitCorpusReader(FileSystemPathPointer(str(view)))
    rows = {f"dr{place(r)[1][2:]}-{place(r)[2].lower()}/{place(r)[3].lower()}": r for r in manifest(root)}
    assert sorted(reader.utteranceids()) == sorted(rows)
    assert set(reader.speakers) == {u.split("/")[0] for u in rows}
    for utterance, row in rows.items():
        words = reader.word_times(utterance)
        assert [w for w, _, _ in words] == row["words"]
        assert all(0 <= s < t <= row["num_samples"] for _, s, t in words)
        assert all(t <= s2 for (_, _, t), (_, s2, _) in itertools.pairwise(words))
        phones = reader.phone_times(utterance)
        assert [p for p, _, _ in phones if p not in SILENCES] == spoken_phones(row)
        # Contiguous from the first sample to the last, as TIMIT's .PHN files.
        assert phones[0][1] == 0 and phones[-1][2] == row["num_samples"]
        assert all(t == s2 for (_, _, t), (_, s2, _) in itertools.pairwise(phones))
        # Each word starts at its first phone and ends at its last.
        starts = {s for _, s, _ in phones}
        assert all(s in starts for _, s, _ in words)
        info = reader.spkrinfo(utterance.split("/")[0])
        assert info.use == ("TRN" if row["split"] == "train" else "TST")
        assert f"speaker_id={row['speaker_id']} split={row['split']}" in info.comments
    assert reader.transcription_dict()["quick"] == ["k", "w", "ih", "k"]


def test_lhotse_timit_preparer_gives_the_manifests_words_and_phones(release, settings, monkeypatch):
    timit = pytest.importorskip("lhotse.recipes.timit")
    root = release_root(settings, release)
    doc = root / "timit/data/DOC"
    # TIMIT's recipes take dev and test speakers from TEST by TIMIT's own lists; the release ships its own.
    lists = tuple(doc.joinpath(f"{s}_spk.list").read_text().split() for s in ("dev", "test"))
    monkeypatch.setattr(timit, "get_speakers", lambda: lists)
    parts = timit.prepare_timit(root / "timit", num_phones=60)
    rows = {"-".join(place(r)[2:]): r for r in manifest(root)}
    seen = set()
    for part, split in (("TRAIN", "train"), ("DEV", "dev"), ("TEST", "test")):
        supervisions = parts[part]["supervisions"]
        assert {s.id for s in supervisions} == {u for u, r in rows.items() if r["split"] == split}
        for sup in supervisions:
            row = rows[sup.id]
            seen.add(sup.id)
            assert [a.symbol for a in sup.alignment["word"]] == row["words"]
            assert [a.symbol for a in sup.alignment["phone"] if a.symbol not in SILENCES] == spoken_phones(row)
            assert sup.text == row["text"]
            recording = parts[part]["recordings"][sup.recording_id]
            assert recording.num_samples == row["num_samples"] and recording.sampling_rate == 16000
    assert seen == set(rows)


def test_the_hidden_split_is_not_in_the_public_tree(release, settings):
    root = release_root(settings, release)
    private = Path(settings.MEDIA_ROOT) / release.private_prefix
    hidden = [json.loads(line) for line in (private / "hidden" / "manifest.jsonl").read_text().splitlines()]
    assert hidden
    names = {exports.timit_speaker_name(r["speaker_id"], r["gender"]) for r in hidden}
    tree = {p.relative_to(root).as_posix() for p in (root / "timit").rglob("*")}
    assert not any(name in path.upper() for name in names for path in tree)
    table = (root / "timit/data/DOC/SPKRINFO.TXT").read_text()
    assert not any(r["speaker_id"] in table for r in hidden)
    # The hidden clips are aligned too, their labels private beside their audio.
    assert all((private / r["audio"]).with_suffix(".phn").is_file() for r in hidden)


def test_every_tree_file_belongs_to_its_speakers_split(release):
    rows = {f.path: f.split for f in release.files.filter(format="timit")}
    assert rows["timit/data/DOC/SPKRINFO.TXT"] == "" and rows["timit/nltk/spkrinfo.txt"] == ""
    per_speaker = {p: s for p, s in rows.items() if "/DOC/" not in p and not p.endswith(("spkrinfo.txt", "dic.txt"))}
    assert set(per_speaker.values()) == {"train", "dev", "test"}
    for path, split in per_speaker.items():
        parts = Path(path).parts
        assert parts[2] == ("TRAIN" if split == "train" else "TEST") if parts[1] == "data" else parts[1] == "nltk"


def test_the_datasheet_names_the_aligner_and_its_boundary_accuracy(release, settings):
    root = release_root(settings, release)
    readme = (root / "README.md").read_text()
    facts = json.loads((root / "datasheet.json").read_text())
    public = len(manifest(root))
    assert facts["alignment"]["clips"] == facts["alignment"]["by_hmm"] == public
    assert release.facts["timings"]["align_s"] > 0
    # No model trained before this first release: a flat start on its own train split, then measured on espeak-ng
    # readings at build time (libespeak-ng is here), the figure the datasheet gives being this model's own.
    aligner = facts["alignment"]
    assert aligner["method"] == "hmm-flat-start" and aligner["initialised_from"] is None
    assert aligner["em_passes"] == 15 and aligner["train_clips"] == facts["splits"]["train"]["clips"]
    assert "monophone HMM" in readme and "trained from a flat start (15 EM passes" in readme
    espeak = aligner["espeak"]
    if espeak["measured"] == "build":
        assert espeak["readings"] == 20 and espeak["boundaries"] > 500
        assert f"**{100 * espeak['within_20ms']:.1f} % of their {espeak['boundaries']} phone boundaries" in readme
    else:
        assert "could not measure its model" in readme and "not this model's" in readme
    assert release.hmm == f"{release.private_prefix}/acoustic/hmm.pt"
    assert (Path(settings.MEDIA_ROOT) / release.hmm).is_file()
    assert not release.files.filter(path__contains="hmm").exists()  # private: never a published file
    assert "espeak-ng" in readme and "dev and test speakers are both under `TEST/`" in readme


def test_a_release_whose_alignment_fails_is_not_ready(corpus, settings, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("aligner died")

    monkeypatch.setattr("training.ml.release_align.align_files", broken)
    release = release_create(version="v1")
    built = release_build(release_id=release.pk)
    assert built.status == "failed" and "aligner died" in built.error
    assert not built.files.exists() and not release_root(settings, built).exists()


def test_flac_is_an_option(corpus, settings):
    release = build("v1", audio_format="flac")
    root = release_root(settings, release)
    row = manifest(root)[0]
    assert row["audio"].endswith(".FLAC") and sf.info(str(root / row["audio"])).format == "FLAC"
    assert (root / row["audio"]).with_suffix(".PHN").is_file()
    wav_scp = (root / "kaldi" / row["split"] / "wav.scp").read_text()
    assert f"{row['utt_id']} flac -c -d -s {row['audio']} |" in wav_scp.splitlines()
    assert Release.objects.get(pk=release.pk).facts["options"]["audio_format"] == "flac"


def _entry(alignment, **kwargs) -> exports.ReleaseEntry:
    values = dict(
        utt_id="u", split="train", speaker_id="spk-a", text="a cat", words=["a", "cat"],
        phones=[["AH"], ["K", "AE", "T"]], audio="timit/data/TRAIN/DR0/XA/SI1.WAV", sha256="0" * 64,
        num_samples=1000, duration_s=0.0625, prompt_id=1, prompt_type="diverse", provenance="recorded",
        votes_counted=0, votes_valid_counted=0, score=0.0, alignment=alignment,
    )  # fmt: skip
    return exports.ReleaseEntry(**{**values, **kwargs})


def test_word_times_span_each_words_phones_and_silences_are_timits():
    entry = _entry([(0, 100, "sil"), (100, 200, "AH"), (200, 300, "sil"), (300, 400, "K"), (400, 500, "AE"),
                    (500, 600, "T"), (600, 1000, "sil")])  # fmt: skip
    assert exports.word_times(entry) == [(100, 200, "a"), (300, 600, "cat")]
    assert [p for _, _, p in exports.timit_phones(entry)] == ["h#", "ah", "pau", "k", "ae", "t", "h#"]
    wrong = _entry([(0, 500, "AH"), (500, 1000, "K")])
    assert not exports.alignment_matches(wrong)
    with pytest.raises(ValueError):
        exports.word_times(wrong)


def test_speaker_names_are_timits_and_two_ids_giving_one_name_are_refused():
    speakers = exports.timit_speakers({"spk-ab2cd3ef": ("male", "Scottish"), "spk-zz": ("", ""), "x_y": ("female", "")})
    assert speakers["spk-ab2cd3ef"] == exports.TimitSpeaker("MAB2CD3EF", 1)
    assert speakers["spk-zz"] == exports.TimitSpeaker("XZZ", 0) and speakers["x_y"].name == "FXY"
    with pytest.raises(ValueError, match="same TIMIT name"):
        exports.timit_speakers({"spk-ab": ("male", ""), "spk-a-b": ("male", "")})


def test_the_aligner_trains_on_at_most_its_cap_of_clips_evenly_spread():
    from training.ml.release_align import _spread

    assert _spread(list(range(10)), 600) == list(range(10))
    picked = _spread(list(range(0, 4000, 2)), 600)
    assert len(picked) == 600 and picked == sorted(set(picked)) and picked[0] == 0 and picked[-1] > 3980
