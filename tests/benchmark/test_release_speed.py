"""The builder's fast paths write the bytes the plain ones did: its tar writer gives ``tarfile``'s stream bytes and
their SHA-256, whatever the member sizes and names (a whole rebuild: test_release_durations_rebuild.py)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from benchmark.packaging import write_tar


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
