"""Checksums and tar packages of a staged release. Plain Python, no Django.

Tars are written as a stream (the bytes of ``tarfile`` mode ``w|``: one pass, constant memory), uncompressed (FLAC
and Parquet are compressed already) and deterministic: sorted members, fixed owner and mtime, so a rebuilt release gives
the same bytes and the same checksums.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CHUNK = 1024 * 1024
# A file this small keeps its bytes in memory for the tars: a page, the least the file itself takes on disk.
HELD_BYTES = 4096
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)


class FileWriter:
    """Writes a staged release's files under ``root`` and keeps, for each, its SHA-256 (taken from the bytes in
    hand: no file written here is read again to be hashed), its size and, for a small one, its bytes, which the
    tars copy from memory. A release is some 17,500 files, 15,000 of them labels of a few hundred bytes: through
    Python's buffered ``open`` each cost more to create than to fill, and each was opened again for its checksum
    and for each tar that holds it.

    Thread-safe for distinct paths (the audio copies write from a thread per core). The record describes what
    was written here; ``verified`` drops any whose file has changed size since (written over by other means)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sums: dict[str, str] = {}
        self.sizes: dict[str, int] = {}
        self.held: dict[str, bytes] = {}
        self._folders: set[str] = set()

    def _folder(self, rel: str) -> None:
        folder = rel.rpartition("/")[0]
        if folder and folder not in self._folders:
            (self.root / folder).mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)

    def put(self, rel: str, data: bytes | bytearray | memoryview | str, *, sha256: str = "") -> None:
        """Write ``data`` (text as UTF-8) to ``rel`` in one ``os.write`` (no buffered layer) and record it;
        ``sha256``: the data's digest, when the caller has just taken it (not taken again)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._folder(rel)
        view = memoryview(data)
        fd = os.open(self.root / rel, _CREATE, 0o666)
        try:
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        self._record(rel, data, sha256)

    def adopt(self, rel: str) -> None:
        """Record a file that another writer made under ``root`` (a Parquet shard), hashing it now, on the thread
        that made it, while its pages are still in the cache."""
        path = self.root / rel
        self.sums[rel], self.sizes[rel] = file_sha256(path), path.stat().st_size

    def _record(self, rel: str, data: bytes | bytearray | memoryview, sha256: str = "") -> None:
        self.sums[rel] = sha256 or hashlib.sha256(data).hexdigest()
        self.sizes[rel] = len(data)
        if len(data) <= HELD_BYTES:
            self.held[rel] = bytes(data)
        else:
            self.held.pop(rel, None)

    def verified(self, sizes: Mapping[str, int]) -> None:
        """Forget every record whose file now has another size (changed since it was written here, or gone), so
        that it is hashed from disk. ``sizes``: every file under ``root`` now."""
        for rel in [r for r in self.sums if sizes.get(r) != self.sizes[r]]:
            del self.sums[rel], self.sizes[rel]
            self.held.pop(rel, None)


def files_under(root: Path) -> dict[str, int]:
    """{relative path: size} of every file under ``root``, sorted (``os.scandir``: no ``Path`` per file)."""
    found: dict[str, int] = {}
    stack = [("", os.fspath(root))]
    while stack:
        prefix, folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((f"{prefix}{entry.name}/", entry.path))
                elif entry.is_file():
                    found[prefix + entry.name] = entry.stat().st_size
    return dict(sorted(found.items()))


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def files_sha256(root: Path, relative_paths: Iterable[str], *, workers: int = 1) -> dict[str, str]:
    """{path: sha256} of files under ``root``, on ``workers`` threads (hashlib and file reads release the GIL), each
    given an even share of the bytes (largest files first, each to the least loaded thread)."""
    paths = sorted(relative_paths)
    sizes = {rel: (root / rel).stat().st_size for rel in paths}
    shares: list[list[str]] = [[] for _ in range(max(1, workers))]
    loads = [0] * len(shares)
    for rel in sorted(paths, key=lambda r: -sizes[r]):
        least = loads.index(min(loads))
        shares[least].append(rel)
        loads[least] += sizes[rel]

    def hash_share(share: list[str]) -> dict[str, str]:
        return {rel: file_sha256(root / rel) for rel in share}

    if len(shares) == 1:
        return hash_share(shares[0])
    with ThreadPoolExecutor(len(shares)) as pool:
        found = {k: v for part in pool.map(hash_share, shares) for k, v in part.items()}
    return {rel: found[rel] for rel in paths}


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
    held: Mapping[str, bytes] | None = None,
) -> str:
    """Stream the files into ``path`` under the folder ``top``; ``extra`` adds members written from memory (a
    tar's own checksums and card), in place of a file of the same path; ``held``: bytes already in memory of
    some of the files (the same bytes: :class:`FileWriter` keeps the small ones), copied from there instead of
    opening the file. Returns the tar's SHA-256, taken on the way (the tar is not read again).

    The bytes are those of ``tarfile`` in stream mode (``w|``, PAX): each member's header from ``TarInfo.tobuf``,
    its content padded to 512 bytes, two zero blocks, zeros to a whole 10 KiB record (``test_release_packages``
    compares the two). Written here rather than through ``tarfile`` because its stream copies in 16 kB pieces
    through a growing buffer and the tar then had to be read once more to be hashed: one pass of 1 MiB reads, each
    hashed and written, is what lets the build keep pace with GNU tar."""
    digest = hashlib.sha256()
    extra = extra or {}
    held = held or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    offset = 0
    buffer = memoryview(bytearray(CHUNK))  # every member read into the same memory: no allocation per read
    with path.open("wb") as sink:

        def put(data: bytes) -> None:
            digest.update(data)  # releases the GIL on large buffers: tars are written side by side in threads
            sink.write(data)

        for rel in sorted(set(relative_paths) | set(extra)):
            data = extra[rel] if rel in extra else held.get(rel)
            source = root / rel
            size = len(data) if data is not None else source.stat().st_size
            header = tar_header(f"{top}/{rel}", size, mtime)
            put(header)
            if data is not None:
                put(data)
            else:
                _copy_exactly(source, size, put, buffer)
            padding = -size % tarfile.BLOCKSIZE
            put(tarfile.NUL * padding)
            offset += len(header) + size + padding
        offset += 2 * tarfile.BLOCKSIZE
        put(tarfile.NUL * (2 * tarfile.BLOCKSIZE + -offset % tarfile.RECORDSIZE))
    return digest.hexdigest()


def _tarinfo(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


# tarfile's header of an empty regular file, whose name, size, mtime and checksum fields a member's header fills in.
_TEMPLATE = _tarinfo("", 0, 0).tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
_OCTAL_LIMIT = 8**11  # what an 11-digit octal field holds (8 GiB, and mtimes to the year 6325)


def tar_header(name: str, size: int, mtime: int) -> bytes:
    """A member's header as ``TarInfo.tobuf`` (PAX) makes it: for an ASCII name of at most 100 bytes (every path a
    release has) it needs no PAX record, so tarfile's own header of an empty file is filled in, ten times faster
    than building it (a release's tars have some 35,000 members); any other name goes through tarfile itself."""
    if len(name) > 100 or not name.isascii() or not (0 <= size < _OCTAL_LIMIT and 0 <= mtime < _OCTAL_LIMIT):
        return _tarinfo(name, size, mtime).tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
    head = bytearray(_TEMPLATE)
    head[0:100] = name.encode("ascii").ljust(100, tarfile.NUL)
    head[124:136] = b"%011o\0" % size
    head[136:148] = b"%011o\0" % mtime
    head[148:156] = b"        "  # the checksum counts its own field as spaces (tarfile.calc_chksums)
    head[148:155] = b"%06o\0" % sum(head)
    return bytes(head)


def _copy_exactly(source: Path, size: int, put, buffer: memoryview) -> None:
    """``size`` bytes of ``source``, as its header promised (a file that changed size is an error, as in tarfile),
    read into ``buffer`` piece by piece."""
    left = size
    with source.open("rb", buffering=0) as handle:
        while left:
            read = handle.readinto(buffer[: min(len(buffer), left)])
            if not read:
                raise OSError(f"{source} ended {left} bytes early: it changed while it was packed")
            put(buffer[:read])
            left -= read
        if handle.read(1):
            raise OSError(f"{source} grew while it was packed")


def sha256sums_text(sums: Mapping[str, str]) -> str:
    """``sha256sum``'s format for ``{path: digest}``, sorted by path."""
    return "".join(f"{digest}  {rel}\n" for rel, digest in sorted(sums.items()))


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
