"""The builder's fast paths write the bytes the plain ones did: its tar writer gives ``tarfile``'s stream bytes and
their SHA-256, whatever the member sizes and names; its WAV copies, Parquet row groups and gzipped manifests are
those libsndfile, Arrow and ``gzip`` made; its file writer's checksums are its files' (a whole rebuild:
test_release_durations_rebuild.py)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from benchmark.releases import exports
from benchmark.releases.build import wav_pcm16
from benchmark.releases.packaging import HELD_BYTES, FileWriter, files_under, write_tar


def tarfile_stream(path: Path, root: Path, members: list[str], *, top: str, mtime: int, extra: dict) -> None:
    """The reference: what the builder wrote with ``tarfile`` (mode ``w|``, PAX) before it wrote tars itself."""
    with path.open("wb") as raw, tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(set(members) | set(extra)):
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = mtime, 0o644, 0, 0, "", ""
            if rel in extra:
                info.size = len(extra[rel])
                tar.addfile(info, io.BytesIO(extra[rel]))
            else:
                info.size = (root / rel).stat().st_size
                with (root / rel).open("rb") as handle:
                    tar.addfile(info, handle)


def test_the_tar_writer_gives_tarfiles_bytes_and_their_sha256(tmp_path):
    root = tmp_path / "root"
    sizes = {
        "empty.txt": 0,
        "one.txt": 1,
        "a/block.bin": 512,
        "a/block-and-one.bin": 513,
        "b/big.bin": (1 << 20) + 3,  # more than one read
        "timit/data/TRAIN/DR1/FABC/SI12.WAV": 10_239,
        "ä/naïve ünïcode.txt": 700,  # a PAX path record
        "x" * 90 + "/" + "y" * 90 + ".txt": 100,  # longer than ustar's 100-byte name field
    }
    for rel, size in sizes.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(os.urandom(size))
    members = [r for r in sizes if r != "one.txt"]
    for n, extra in enumerate(({}, {"SHA256SUMS": b"abc  one\n", "one.txt": b"replaced"})):
        ours, reference = tmp_path / f"ours{n}.tar", tmp_path / f"ref{n}.tar"
        digest = write_tar(ours, root, members, top="openphone-v1", mtime=1_700_000_000, extra=extra)
        tarfile_stream(reference, root, members, top="openphone-v1", mtime=1_700_000_000, extra=extra)
        assert ours.read_bytes() == reference.read_bytes()
        assert digest == hashlib.sha256(reference.read_bytes()).hexdigest()
        assert ours.stat().st_size % tarfile.RECORDSIZE == 0


def test_a_file_that_changes_size_while_packed_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "f").write_bytes(b"x" * 1000)
    real_stat = Path.stat

    def smaller(self, **kwargs):
        result = real_stat(self, **kwargs)
        return os.stat_result((*result[:6], 999, *result[7:])) if self.name == "f" else result

    monkeypatch.setattr(Path, "stat", smaller)
    with pytest.raises(OSError, match="grew"):
        write_tar(tmp_path / "t.tar", tmp_path, ["f"], top="t", mtime=0)


def test_wav_copies_are_libsndfiles_bytes(tmp_path):
    """The builder decodes a mono clip behind its own header: the bytes ``sf.write`` gave, at any length and rate;
    other channel counts go through libsndfile itself."""
    rng = np.random.default_rng(0)
    for n, (frames, rate, channels) in enumerate([(1, 16_000, 1), (2, 16_000, 1), (16_001, 16_000, 1),
                                                  (4_800, 48_000, 1), (999, 16_000, 2)]):  # fmt: skip
        samples = rng.integers(-32768, 32767, size=(frames, channels) if channels > 1 else frames, dtype=np.int16)
        flac = tmp_path / f"clip{n}.flac"
        sf.write(flac, samples, rate, subtype="PCM_16", format="FLAC")
        reference = io.BytesIO()
        sf.write(reference, sf.read(flac, dtype="int16")[0], rate, subtype="PCM_16", format="WAV")
        with sf.SoundFile(flac) as source:
            wav, count = wav_pcm16(source)
        assert bytes(wav) == reference.getvalue() and count == frames


def _entry(**kwargs) -> exports.ReleaseEntry:
    values = dict(
        utt_id="u", split="train", speaker_id="spk-a", text="a cat", words=["a", "cat"],
        phones=[["AH"], ["K", "AE", "T"]], audio="a.WAV", sha256="0" * 64, num_samples=1000, duration_s=0.0625,
        prompt_id=1, prompt_type="diverse", provenance="recorded", votes_counted=2, votes_valid_counted=1, score=0.5,
    )  # fmt: skip
    return exports.ReleaseEntry(**{**values, **kwargs})


def test_parquet_row_groups_are_the_tables_arrow_converts(tmp_path):
    """The audio column read straight into an Arrow buffer makes the table ``from_pydict`` made of the same rows."""
    rows, flac = [], {}
    for n, size in enumerate([0, 1, 5000, 77]):
        sha = f"{n:064d}"
        flac[sha] = tmp_path / f"{sha}.flac"
        flac[sha].write_bytes(os.urandom(size))
        rows.append(_entry(utt_id=f"u{n}", sha256=sha, gender="female" if n else ""))
    schema = exports.hf_schema()
    sizes = {e.sha256: flac[e.sha256].stat().st_size for e in rows}
    ours = exports._hf_table(rows, flac, sizes, schema)
    assert ours.equals(pa.Table.from_pydict(exports._hf_columns(rows, flac), schema=schema))
    assert ours.schema.equals(schema, check_metadata=True)
    assert ours.column("audio").to_pylist()[2] == {"bytes": flac[f"{2:064d}"].read_bytes(), "path": "u2.flac"}


def test_the_file_writer_records_what_is_on_disk(tmp_path):
    """Checksums, sizes and held bytes are those of the files; a file written over by other means since is
    forgotten, to be hashed from disk."""
    out = FileWriter(tmp_path)
    out.put("a/x.TXT", "0 10 hellö\n")
    out.put("big.bin", os.urandom(HELD_BYTES + 1))
    out.put("big.bin", os.urandom(HELD_BYTES + 2))
    for rel in ("a/x.TXT", "big.bin"):
        data = (tmp_path / rel).read_bytes()
        assert out.sums[rel] == hashlib.sha256(data).hexdigest() and out.sizes[rel] == len(data)
    assert out.held == {"a/x.TXT": "0 10 hellö\n".encode()}
    (tmp_path / "big.bin").write_bytes(b"written over by other means")
    out.verified(files_under(tmp_path))
    assert "big.bin" not in out.sums and "a/x.TXT" in out.sums


def test_lhotse_manifests_are_gzips_bytes(tmp_path):
    """Compressed in memory, the bytes ``GzipFile`` wrote to the file (its name in the header, mtime 0)."""
    rows = [{"id": f"u{n}", "text": "ünïcode " * n} for n in range(50)]
    path = tmp_path / "lhotse" / "openphone_recordings_train.jsonl.gz"
    path.parent.mkdir()
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
        for row in rows:
            handle.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
    assert exports._gz_jsonl("lhotse/openphone_recordings_train.jsonl.gz", rows) == path.read_bytes()
