"""Checksums and tar packages of a staged release. Plain Python, no Django.

Tars are written as a stream (``tarfile`` mode ``w|``: one pass, constant memory), uncompressed (FLAC and Parquet
are compressed already) and deterministic: sorted members, fixed owner and mtime, so a rebuilt release gives
the same bytes and the same checksums.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterable, Mapping
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
    path.write_text(sha256sums_text(sums), encoding="utf-8")
    return sums


def parse_sha256sums(text: str) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            digest, _, rel = line.partition("  ")
            sums[rel.strip()] = digest.strip()
    return sums


def write_tar(
    path: Path,
    root: Path,
    relative_paths: Iterable[str],
    *,
    top: str,
    mtime: int,
    extra: Mapping[str, bytes] | None = None,
) -> int:
    """Stream the files into ``path`` under the folder ``top``; ``extra`` adds members written from memory (a
    tar's own checksums and card), in place of a file of the same path. Returns the bytes of content packed."""
    packed = 0
    extra = extra or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw, tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(set(relative_paths) | set(extra)):
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.mtime = mtime
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if rel in extra:
                info.size = len(extra[rel])
                tar.addfile(info, io.BytesIO(extra[rel]))
            else:
                source = root / rel
                info.size = source.stat().st_size
                with source.open("rb") as handle:
                    tar.addfile(info, handle)
            packed += info.size
    return packed


def sha256sums_text(sums: Mapping[str, str]) -> str:
    """``sha256sum``'s format for ``{path: digest}``, sorted by path."""
    return "".join(f"{digest}  {rel}\n" for rel, digest in sorted(sums.items()))


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
