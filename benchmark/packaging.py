"""Checksums and tar packages of a staged release. Plain Python, no Django.

Tars are written as a stream (``tarfile`` mode ``w|``: one pass, constant memory), uncompressed (FLAC and Parquet
are compressed already) and deterministic: sorted members, fixed owner and mtime, so a rebuilt release gives
the same bytes and the same checksums.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1024 * 1024


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_sha256sums(path: Path, root: Path, relative_paths: Iterable[str]) -> dict[str, str]:
    """``sha256sum``'s format (``HASH  PATH``), so ``sha256sum -c SHA256SUMS`` verifies an unpacked release."""
    sums = {rel: file_sha256(root / rel) for rel in sorted(relative_paths)}
    path.write_text("".join(f"{digest}  {rel}\n" for rel, digest in sums.items()), encoding="utf-8")
    return sums


def parse_sha256sums(text: str) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            digest, _, rel = line.partition("  ")
            sums[rel.strip()] = digest.strip()
    return sums


def write_tar(path: Path, root: Path, relative_paths: Iterable[str], *, top: str, mtime: int) -> int:
    """Stream the files into ``path`` under the folder ``top``; returns the bytes of file content packed."""
    packed = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw, tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(relative_paths):
            source = root / rel
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size = source.stat().st_size
            info.mtime = mtime
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with source.open("rb") as handle:
                tar.addfile(info, handle)
            packed += info.size
    return packed
