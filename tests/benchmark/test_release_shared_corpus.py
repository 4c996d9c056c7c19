"""The shared speechocean762 half (every speaker, three of their twenty utterances) imports completely with --validated,
releases into every format and each one loads."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import soundfile as sf
from django.core.management import call_command

from benchmark.models import Release
from contributors.models import Clip, ClipStatus, Contributor
from contributors.services.imports import SPEECHOCEAN762_SOURCE
from tests.benchmark.conftest import SHARED, release_root
from tests.benchmark.test_release_formats import validate_kaldi_dir
from training.ml import release_align

PUBLIC = ("train", "dev", "test")
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not (SHARED / "manifest.tsv").is_file(), reason=f"{SHARED} is absent (shared data)"),
]


def every_speaker(manifest: Path, utterances_each: int, folder: Path) -> tuple[Path, int, float]:
    """The shared half's manifest cut to ``utterances_each`` utterances of every speaker: all 125 speakers (so the
    splits, their ages and the hidden-split rule meet the real corpus's speakers) at a fraction of the audio. Each
    speaker's utterances with the corpus's rarest phones come first: ZH is in 6 speakers' readings and OY in 31, so
    a speaker's first five left ZH to 2 speakers, and when both landed in dev or test (about one split in twenty)
    train lacked a phone. Returns the cut manifest, its rows and its hours."""
    header, *lines = manifest.read_text().splitlines()
    columns = header.split("\t")
    entries = (line.lower().split() for line in (manifest.parent / "lexicon.txt").read_text().splitlines())
    rare = {word for word, *phones in entries if {p.rstrip("012") for p in phones} & {"zh", "oy"}}

    def has_rare(line: str) -> bool:
        return bool(rare & set(line.split("\t")[columns.index("text")].lower().split()))

    kept: list[str] = []
    seen: dict[str, int] = {}
    for line in sorted(lines, key=lambda line: not has_rare(line)):  # stable: otherwise in the manifest's order
        speaker = line.split("\t")[columns.index("speaker")]
        if seen.get(speaker, 0) < utterances_each:
            seen[speaker] = seen.get(speaker, 0) + 1
            kept.append(line)
    cut = folder / "manifest.tsv"
    cut.write_text("\n".join([header, *kept]) + "\n")
    return cut, len(kept), sum(float(line.split("\t")[columns.index("duration_s")]) for line in kept) / 3600


def test_shared_half_releases_into_every_format(settings, tmp_path, capsys, monkeypatch):
    # This test checks what a release of real speech holds and how tools load it, not alignment accuracy
    # (benchmarks/alignment.py does) nor scale (benchmarks/release.py does): every speaker of the shared half with
    # three of their twenty utterances, and the release's aligner trains its HMM on at most 60 of them.
    monkeypatch.setattr(release_align, "MAX_TRAIN_CLIPS", 60)
    manifest, rows_cut, hours_cut = every_speaker(SHARED / "manifest.tsv", 3, tmp_path)
    started = time.monotonic()
    call_command(
        "import_corpus", str(manifest), audio_root=str(SHARED), lexicon=str(SHARED / "lexicon.txt"),
        source_file=str(SPEECHOCEAN762_SOURCE), validated=True, first_language="Mandarin", verbosity=0,
    )  # fmt: skip
    imported = time.monotonic()
    # The import is complete.
    assert f"{rows_cut} rows: {rows_cut} imported, 0 already present, 0 skipped" in capsys.readouterr().out
    assert Contributor.objects.count() == 125 and rows_cut == 375
    assert Clip.objects.filter(status=ClipStatus.VALID, source__name="speechocean762").count() == rows_cut
    assert Clip.objects.first().source.licence == "CC-BY-4.0"
    hours = sum(Clip.objects.values_list("duration_s", flat=True)) / 3600
    assert hours == pytest.approx(hours_cut, abs=0.002)
    call_command("release_build", "--version", "so762", verbosity=0)
    built = time.monotonic()
    release = Release.objects.get(version="so762")
    root = release_root(settings, release)
    facts = release.facts
    print(f"import {imported - started:.1f} s, build {built - imported:.1f} s, {facts['timings']}")

    assert release.clip_count == rows_cut and release.speaker_count == 125
    # An imported corpus is public elsewhere: none of its speakers may be hidden, so this release has no hidden
    # split (issue 16); its share goes to the public splits.
    assert {s: v["speakers"] for s, v in facts["splits"].items()} == {"train": 98, "dev": 14, "test": 13, "hidden": 0}
    assert facts["hidden_split"]["formed"] is False and facts["hidden_split"]["leaderboard_split"] == "test"
    assert facts["coverage"]["train"]["phones"] == 39

    result = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]
    # speechocean762 is CC BY 4.0, not CC0: the release says so, credits it with its count and cites it.
    assert [(s["name"], s["licence"], s["clips"]) for s in facts["sources"]] == [
        ("speechocean762", "CC-BY-4.0", rows_cut)
    ]
    assert facts["licence"] == "CC-BY-4.0"
    assert f"speechocean762 (imported corpus): {rows_cut} clips" in (root / "LICENSE").read_text()
    readme = (root / "README.md").read_text()
    assert "@inproceedings{zhang2021speechocean762" in readme.split("## How to cite", 1)[1]
    assert "license: cc-by-4.0" in readme and "license: cc-by-4.0" in (root / "hf" / "README.md").read_text()
    # The test split's tar alone: its own checksums verify after unpacking.
    with tarfile.open(root / "packages" / "openphone-so762-test.tar") as tar:
        tar.extractall(tmp_path / "test-tar", filter="data")
    alone = tmp_path / "test-tar" / "openphone-so762-test"
    result = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=alone, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == rows_cut - facts["splits"]["hidden"]["clips"]
    # Balanced: children in every split (counted on the manifest: the datasheet folds groups under 5 speakers).
    children = {s: {r["speaker_id"] for r in rows if r["split"] == s and r["age_group"] == "child"} for s in PUBLIC}
    assert all(len(n) >= 3 for n in children.values()), children
    for split in ("train", "dev", "test"):
        assert len(validate_kaldi_dir(root / "kaldi" / split)) == facts["splits"][split]["clips"]

    lhotse = pytest.importorskip("lhotse")
    recordings = lhotse.load_manifest(root / "lhotse/openphone_recordings_test.jsonl.gz").with_path_prefix(root)
    supervisions = lhotse.load_manifest(root / "lhotse/openphone_supervisions_test.jsonl.gz")
    cuts = lhotse.CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
    assert len(cuts) == facts["splits"]["test"]["clips"]
    assert next(iter(cuts)).load_audio().shape[0] == 1

    datasets = pytest.importorskip("datasets")
    data = datasets.load_dataset(
        "parquet", data_files={"test": str(root / "hf/data/test-*.parquet")}, cache_dir=str(tmp_path / "hf")
    )["test"].cast_column("audio", datasets.Audio(decode=False))
    assert len(data) == facts["splits"]["test"]["clips"]
    samples, rate = sf.read(io.BytesIO(data[0]["audio"]["bytes"]))
    assert rate == 16000 and len(samples) > 16000 * 0.5
