"""Each export loads with its own library: Lhotse, Hugging Face `datasets`, a Kaldi data-dir check, TIMIT files."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.benchmark.conftest import release_root

pytestmark = pytest.mark.django_db


def validate_kaldi_dir(folder: Path) -> set[str]:
    """What Kaldi's utils/validate_data_dir.sh checks (--no-feats): each file sorted (C order) and unique,
    the same utterances in utt2spk, text, wav.scp and utt2dur, spk2utt the inverse of utt2spk, utt2spk
    sorted by speaker too, spk2gender (when present) f/m for exactly the speakers; returns the utterances."""

    def table(name: str) -> list[tuple[str, str]]:
        lines = (folder / name).read_text().splitlines()
        rows = [tuple(line.split(" ", 1)) for line in lines]
        assert all(len(r) == 2 and r[1].strip() for r in rows), f"{name}: an empty field"
        keys = [r[0] for r in rows]
        assert keys == sorted(keys, key=lambda k: k.encode()), f"{name} is not sorted"
        assert len(set(keys)) == len(keys), f"{name} has duplicate keys"
        return rows

    utt2spk = table("utt2spk")
    utts = [u for u, _ in utt2spk]
    for name in ("text", "wav.scp", "utt2dur"):
        assert [u for u, _ in table(name)] == utts, f"{name} and utt2spk differ"
    assert [s for _, s in utt2spk] == sorted((s for _, s in utt2spk), key=lambda k: k.encode()), "not sorted by speaker"
    expected = defaultdict(list)
    for utt, spk in utt2spk:
        expected[spk].append(utt)
    assert {s: u.split() for s, u in table("spk2utt")} == expected
    if (folder / "spk2gender").exists():
        genders = dict(table("spk2gender"))
        assert set(genders) == set(expected) and set(genders.values()) <= {"f", "m"}
    for _, command in table("wav.scp"):
        # A WAV is read as it is; a FLAC through a pipe.
        if command.startswith("flac "):
            assert command.startswith("flac -c -d -s ") and command.endswith(" |")
        path = command.split()[4] if command.startswith("flac ") else command
        assert (folder.parents[1] / path).is_file()
    return set(utts)


def manifest_ids(root: Path, split: str) -> set[str]:
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    return {r["utt_id"] for r in rows if r["split"] == split}


def test_kaldi_dirs_are_valid(release, settings):
    root = release_root(settings, release)
    for split in ("train", "dev", "test"):
        assert validate_kaldi_dir(root / "kaldi" / split) == manifest_ids(root, split)
    assert (root / "kaldi" / "train" / "spk2gender").exists()


def test_timit_tree_has_audio_and_labels(release, settings):
    """The tree in detail, and its loading by NLTK and Lhotse: test_release_timit.py."""
    root = release_root(settings, release)
    row = json.loads((root / "manifest.jsonl").read_text().splitlines()[0])
    wav = root / row["audio"]
    assert wav.parts[-5:-3] == ("data", "TRAIN" if row["split"] == "train" else "TEST") and wav.suffix == ".WAV"
    audio, rate = sf.read(wav)
    assert rate == 16000 and len(audio) == row["num_samples"]
    assert wav.with_suffix(".TXT").read_text() == f"0 {row['num_samples']} {row['text']}\n"
    words = wav.with_suffix(".WRD").read_text().splitlines()
    assert [w.split()[2] for w in words] == row["words"]
    phn = [line.split() for line in wav.with_suffix(".PHN").read_text().splitlines()]
    assert phn[0][0] == "0" and int(phn[-1][1]) == row["num_samples"]


def test_lhotse_manifests_load_with_lhotse(release, settings):
    lhotse = pytest.importorskip("lhotse")
    root = release_root(settings, release)
    recordings = lhotse.load_manifest(root / "lhotse/openphone_recordings_train.jsonl.gz").with_path_prefix(root)
    supervisions = lhotse.load_manifest(root / "lhotse/openphone_supervisions_train.jsonl.gz")
    assert isinstance(recordings, lhotse.RecordingSet) and isinstance(supervisions, lhotse.SupervisionSet)
    assert set(recordings.ids) == manifest_ids(root, "train")
    cuts = lhotse.CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
    cut = next(iter(cuts))
    samples = cut.load_audio()
    assert samples.shape == (1, cut.num_samples) and cut.sampling_rate == 16000
    assert cut.supervisions[0].text and cut.supervisions[0].speaker in cut.id
    lhotse.validate(recordings)
    lhotse.validate(supervisions)


def test_parquet_shards_load_with_datasets(release, settings):
    datasets = pytest.importorskip("datasets")
    root = release_root(settings, release)
    data = datasets.load_dataset(
        "parquet", data_dir=str(root / "hf" / "data"), cache_dir=str(Path(settings.MEDIA_ROOT) / "hf-cache")
    )
    assert set(data) == {"train", "validation", "test"}  # `datasets` names dev-* shards "validation"
    train = data["train"]
    # The features came from the schema's metadata: audio is an Audio column, not a plain struct.
    assert isinstance(train.features["audio"], datasets.Audio)
    train = train.cast_column("audio", datasets.Audio(decode=False))  # torchcodec has no CPU build here
    row = train[0]
    samples, rate = sf.read(io.BytesIO(row["audio"]["bytes"]))
    assert rate == 16000 and samples.ndim == 1 and np.abs(samples).max() > 0
    assert row["id"] in manifest_ids(root, "train") and row["speaker_id"] in row["id"] and row["text"]
    assert set(train["id"]) == manifest_ids(root, "train")


def test_parquet_audio_is_each_clips_stored_flac_with_the_tree_samples(release, settings):
    """The shards embed the clip's lossless FLAC as stored (not the tree's WAV): byte for byte the stored file,
    decoding to the samples of the clip's file in the TIMIT tree, the column left uncompressed."""
    import pyarrow.parquet as pq
    from django.core.files.storage import default_storage

    from contributors.models import Clip

    root = release_root(settings, release)
    rows = {json.loads(line)["utt_id"]: json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()}
    stored = {c.sha256: c.audio.name for c in Clip.objects.all()}
    seen = 0
    for shard in sorted((root / "hf" / "data").glob("*.parquet")):
        metadata = pq.ParquetFile(shard).metadata
        for group in range(metadata.num_row_groups):
            columns = {metadata.row_group(group).column(c).path_in_schema: metadata.row_group(group).column(c)
                       for c in range(metadata.num_columns)}  # fmt: skip
            assert columns["audio.bytes"].compression == "UNCOMPRESSED" and columns["id"].compression == "ZSTD"
        table = pq.read_table(shard, columns=["id", "audio"]).to_pylist()
        for row in table:
            entry = rows[row["id"]]
            with default_storage.open(stored[entry["sha256"]], "rb") as handle:
                assert row["audio"]["bytes"] == handle.read()
            assert row["audio"]["path"] == f"{row['id']}.flac"
            flac, rate = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="int16")
            tree, tree_rate = sf.read(root / entry["audio"], dtype="int16")
            assert rate == tree_rate == 16000 and np.array_equal(flac, tree)
            seen += 1
    assert seen == sum(1 for r in rows.values() if r["split"] != "hidden") > 0


@pytest.mark.parametrize("audio_format", ["wav", "flac"])
def test_on_object_storage_each_clip_is_fetched_once_and_the_release_is_the_same(
    corpus, settings, monkeypatch, audio_format
):
    """Storage with no local path (S3): the build fetches each clip's FLAC once, into its staging folder, and both
    the TIMIT tree's copy and the Parquet shards read that file. The release has the same bytes as one built from
    local files."""
    from django.core.files.storage import default_storage

    from benchmark.models import Release, ReleaseStatus
    from benchmark.releases import build as builder
    from benchmark.releases.selectors import release_public_entries
    from benchmark.releases.services import release_build, release_create
    from contributors.models import Clip
    from tests.benchmark.conftest import build

    local = build("v1", audio_format=audio_format)
    files = dict(local.files.values_list("path", "sha256"))
    Release.objects.filter(pk=local.pk).update(status=ReleaseStatus.FAILED)

    audio = list(Clip.objects.values_list("audio", flat=True))
    opened: list[str] = []

    class ObjectStorage:  # the same files, without a local path, counting the clips it serves
        def open(self, name, mode="rb"):
            if name in audio:
                opened.append(name)
            return default_storage.open(name, mode)

        def __getattr__(self, attr):
            return getattr(default_storage, attr)

    monkeypatch.setattr(builder, "default_storage", ObjectStorage())
    monkeypatch.setattr(builder, "local_path", lambda name: None)
    remote = release_build(release_id=release_create(version="v1", audio_format=audio_format).pk)
    assert remote.status == ReleaseStatus.READY, remote.error
    assert len(release_public_entries(release=remote)) > 10
    assert sorted(opened) == sorted(audio)  # every clip (the hidden ones too), once each
    assert dict(remote.files.values_list("path", "sha256")) == files
