"""python -m openphone.download VERSION DEST [--split S] [--format F] [--server URL] [--files] [--quiet]

Downloads a release's files over the public API and finishes: waits out 429s (Retry-After) and network errors with
bounded exponential backoff, fetches a whole split as its tar (with the format's files every split shares, so one
split of the TIMIT tree loads in NLTK and Lhotse), resumes a partial file with Range + If-Range (the
ETag), verifies every SHA-256, re-verifies files already there and replaces damaged ones, and shows progress on
stderr. Standard library only (tqdm is used when installed); the server comes from --server or $OPENPHONE_SERVER.
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import http.client
import json
import os
import random
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

CHUNK = 1024 * 1024
SERVER_ENV = "OPENPHONE_SERVER"
TIMEOUT_S = 60
TRIES = 8  # per request; a success starts the count again
BACKOFF_S = 1.0  # the first wait without Retry-After, doubled each try...
BACKOFF_MAX_S = 60.0  # ... up to this
RETRY_AFTER_MAX_S = 600.0  # a longer Retry-After is waited this long, then asked again
RETRY_STATUSES = {429, 502, 503, 504}
TRANSIENT_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)
PACKAGE = "package"
# A split's tar carries every format of the split, so it pays only for many files (TIMIT's tree, not Kaldi's six
# or two Parquet shards): what one more request costs, in bytes (a round trip or two at tens of MB/s); a tar
# already there, whole or in part, is always used.
REQUEST_COST_BYTES = 1_000_000
LISTING_PAGE = 5000  # the server's largest page of a release's files (benchmark.releases.apis.FilesPagination)


class DownloadError(Exception):
    """A sentence for the user; the CLI exits non-zero with it."""


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # a seam: tests wait without waiting


# --- requests that finish: Retry-After, backoff, transient errors -------------------------------------------------
def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    value = (exc.headers.get("Retry-After") or "").strip() if exc.headers else ""
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _server_message(exc: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(exc.read() or b"{}").get("message")
    except (ValueError, AttributeError, OSError):
        message = None
    return message or f"HTTP {exc.code} {exc.reason}"


def _retrying(url: str, attempt: Callable[[], object], say: Callable[[str], None]) -> object:
    """``attempt()`` until it succeeds; a 429/502/503/504 or a network error is tried again (up to TRIES), after
    the server's Retry-After or an exponential backoff; any other HTTP error is a DownloadError at once."""
    for tries in range(1, TRIES + 1):
        try:
            return attempt()
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRY_STATUSES:
                raise DownloadError(_server_message(exc)) from exc
            asked = _retry_after(exc)
            if tries == TRIES:
                raise DownloadError(
                    f"the server still answers HTTP {exc.code} after {TRIES} tries ({_server_message(exc)}); "
                    "run again later to continue"
                ) from exc
            delay = min(asked, RETRY_AFTER_MAX_S) if asked is not None else _backoff(tries)
            reason = f"HTTP {exc.code}" + (f", Retry-After {asked:.0f} s" if asked is not None else "")
        except TRANSIENT_ERRORS as exc:
            reason = str(getattr(exc, "reason", None) or exc or type(exc).__name__)
            if tries == TRIES:
                raise DownloadError(f"cannot reach {url} after {TRIES} tries: {reason}; run again to resume") from exc
            delay = _backoff(tries)
        say(f"{url}: {reason}; trying again in {delay:.0f} s ({tries}/{TRIES - 1})")
        _sleep(max(delay, 0.1))
    raise AssertionError("unreachable")  # pragma: no cover


def _backoff(tries: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (tries - 1)) * random.uniform(0.5, 1.0)  # noqa: S311 (jitter)


def _urlopen(request: urllib.request.Request | str):
    return urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310 (http(s) URLs, checked in main)


def _get_json(url: str, say: Callable[[str], None]) -> dict:
    def attempt() -> dict:
        with _urlopen(url) as response:
            return json.load(response)

    return _retrying(url, attempt, say)  # type: ignore[return-value]


# --- progress on stderr, no optional package needed ---------------------------------------------------------------
def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


class Progress:
    """Bytes and percent of the whole fetch: tqdm's bar when tqdm is installed; else one line rewritten in place
    on a terminal, or one line per file when stderr is a file or a pipe. Notes (retries) always get their line."""

    def __init__(self, *, total_bytes: int, total_files: int, enabled: bool, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.total_bytes, self.total_files = total_bytes, total_files
        self.done_bytes, self.done_files = 0, 0
        self.name = ""
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.drawn_at = 0.0
        self.bar = None
        if enabled and total_bytes:
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=total_bytes, unit="B", unit_scale=True, file=self.stream)

    def start(self, name: str) -> None:
        self.name = name
        if self.bar is not None:
            self.bar.set_description(PurePosixPath(name).name, refresh=False)

    def add(self, nbytes: int) -> None:
        self.done_bytes += nbytes
        if self.bar is not None:
            self.bar.update(nbytes)
        elif self.enabled and self.tty and time.monotonic() - self.drawn_at > 0.1:
            self._draw(end="")

    def finish_file(self) -> None:
        self.done_files += 1
        if self.bar is None and self.enabled:
            self._draw(end="" if self.tty else "\n")

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
            return
        if self.tty and self.enabled:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, *, end: str) -> None:
        percent = 100 * self.done_bytes / self.total_bytes if self.total_bytes else 100.0
        line = (
            f"[{self.done_files}/{self.total_files}] {_human(self.done_bytes)} of {_human(self.total_bytes)} "
            f"({percent:.0f}%) {self.name}"
        )
        self.stream.write(("\r\033[K" + line if self.tty else line) + end)
        self.stream.flush()
        self.drawn_at = time.monotonic()


# --- listing ------------------------------------------------------------------------------------------------------
def _listing(server: str, version: str, query: dict[str, str], say) -> list[dict]:
    base = f"{server.rstrip('/')}/api/v1/releases/{urllib.parse.quote(version)}/files"
    files: list[dict] = []
    url: str | None = f"{base}?{urllib.parse.urlencode({k: v for k, v in query.items() if v})}"
    while url:  # the listing comes a page at a time; ``next`` is null on the last
        page = _get_json(url, say)
        files += page["results"]
        url = page.get("next")
    for info in files:
        relative = PurePosixPath(info["path"])
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise DownloadError(f"refusing the unsafe path {info['path']!r}")
    return files


def list_files(server: str, version: str, *, split: str | None, fmt: str | None, say=print) -> list[dict]:
    """The files of ``fmt`` (of ``split``); no format, or ``package``, is one tar: the split's, or the release's."""
    files = _listing(server, version, {"split": split or "", "format": fmt or PACKAGE}, say)
    if (fmt or PACKAGE) == PACKAGE:
        files = [f for f in files if f["split"] == (split or "")]
    if not files:
        raise DownloadError(f"release {version} has no files for split={split or 'all'} format={fmt or PACKAGE}")
    return files


def split_extras(server: str, version: str, *, split: str, fmt: str, say=print) -> tuple[list[dict], dict | None]:
    """What a split of a per-split format needs beside its own files: the format's files every split shares (the
    TIMIT tree's DOC/ and NLTK's spkrinfo.txt and timitdic.txt, Kaldi's dict/ and lang/), without which a TIMIT
    tool loads nothing, and the split's tar (None if it has none). One listing: the split's files and the
    release-wide ones, in pages as large as the server gives."""
    listing = _listing(server, version, {"split": split, "page_size": str(LISTING_PAGE)}, say)
    shared = [f for f in listing if f["format"] == fmt and f["split"] == ""]
    tar = next((f for f in listing if f["format"] == PACKAGE and f["split"] == split), None)
    return shared, tar


# --- one file -----------------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_state(info: dict, dest: Path) -> str:
    """ "present" (complete, checksum verified), "damaged" (there, but not the published bytes) or "missing"."""
    target = dest / info["path"]
    if not target.is_file():
        return "missing"
    if target.stat().st_size == info["size"] and _sha256(target) == info["sha256"]:
        return "present"
    return "damaged"


def _fetch_part(info: dict, part: Path, progress: Progress) -> None:
    """One try at the rest of ``part``: a Range request from its size, guarded by If-Range."""
    have = part.stat().st_size if part.exists() else 0
    if have >= info["size"]:
        part.touch()  # an empty file (Kaldi's extra_questions.txt) needs no request, but must exist
        return
    request = urllib.request.Request(info["url"])  # noqa: S310
    if have:
        request.add_header("Range", f"bytes={have}-")
        request.add_header("If-Range", f'"{info["sha256"]}"')
    with _urlopen(request) as response:
        mode = "ab" if response.status == 206 else "wb"
        if mode == "wb":
            progress.add(-have)
        with part.open(mode) as sink:
            while chunk := response.read(CHUNK):
                sink.write(chunk)
                progress.add(len(chunk))


def download_file(info: dict, dest: Path, progress: Progress) -> str:
    """Fetch one file to ``dest/path``: "present", "downloaded", "resumed" or "replaced" (a damaged file). A
    partial file is kept as ``.part`` and continued where it stopped, across retries and runs; a resumed file that
    fails its checksum is fetched once more from the start, a fresh one is an error."""
    target = dest / info["path"]
    progress.start(info["path"])
    state = file_state(info, dest)
    if state == "present":
        progress.add(info["size"])
        progress.finish_file()
        return "present"
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if have > info["size"]:
        part.unlink()
        have = 0
    progress.add(have)
    _retrying(info["url"], lambda: _fetch_part(info, part, progress), progress.note)
    if _sha256(part) != info["sha256"]:
        part.unlink()
        if not have:
            raise DownloadError(f"{info['path']}: checksum mismatch; the partial file was removed, run again")
        progress.note(f"{info['path']}: the resumed file failed its checksum; fetching it again from the start")
        progress.add(-info["size"])
        _retrying(info["url"], lambda: _fetch_part(info, part, progress), progress.note)
        if _sha256(part) != info["sha256"]:
            part.unlink()
            raise DownloadError(f"{info['path']}: checksum mismatch; the partial file was removed, run again")
        have = 0
    part.replace(target)
    progress.finish_file()
    if state == "damaged":
        return "replaced"
    return "resumed" if have else "downloaded"


# --- a whole split through its tar --------------------------------------------------------------------------------
def _extract(tar_path: Path, wanted: dict[str, dict], dest: Path) -> dict[str, str]:
    """Write the tar's members that are in ``wanted`` (paths below the tar's top folder) to ``dest``, each
    checked against its published sha256; {path: "extracted" | "replaced"}."""
    done: dict[str, str] = {}
    with tarfile.open(tar_path, mode="r:") as archive:
        for member in archive:
            relative = member.name.split("/", 1)[-1]
            info = wanted.get(relative)
            if info is None or not member.isfile():
                continue
            target = dest / relative
            existed = target.exists()
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            digest = hashlib.sha256()
            source = archive.extractfile(member)
            if source is None:
                continue
            with source, part.open("wb") as sink:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
            if digest.hexdigest() != info["sha256"]:
                part.unlink()
                raise DownloadError(f"{relative} in {tar_path.name} does not match its published checksum")
            part.replace(target)
            done[relative] = "replaced" if existed else "extracted"
    return done


def _via_tar(tar: dict, needed: list[dict], dest: Path, progress: Progress) -> dict[str, str]:
    """Fetch (or resume, or reuse) the split's tar, extract the needed files, and remove the tar unless it was
    already complete before this run (then it is the user's)."""
    tar_path = dest / tar["path"]
    was_complete = file_state(tar, dest) == "present"
    outcome = download_file(tar, dest, progress)
    if progress.enabled:
        progress.note(f"{tar['path']}: {outcome}; extracting {len(needed)} files")
    done = _extract(tar_path, {info["path"]: info for info in needed}, dest)
    if not was_complete:
        tar_path.unlink()
        if tar_path.parent != dest and not any(tar_path.parent.iterdir()):
            tar_path.parent.rmdir()
    return done


# --- the whole fetch ----------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    paths: dict[str, list[str]] = field(default_factory=dict)
    tar: str = ""

    def add(self, what: str, path: str) -> None:
        self.paths.setdefault(what, []).append(path)

    def summary(self) -> str:
        counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(self.paths.items()) if k != "replaced")
        text = (f"via {self.tar}: " if self.tar else "") + (counts or "nothing else")
        replaced = self.paths.get("replaced", [])
        if replaced:
            shown = ", ".join(replaced[:10]) + (f" and {len(replaced) - 10} more" if len(replaced) > 10 else "")
            text += f"; replaced {len(replaced)} damaged file{'s' if len(replaced) > 1 else ''}: {shown}"
        return text


def download(
    server: str,
    version: str,
    dest: Path,
    *,
    split: str | None,
    fmt: str | None,
    progress: bool = True,
    file_by_file: bool = False,
    stream=None,
) -> Outcome:
    """Fetch what was asked for into ``dest``. A split of a per-split format comes with the format's files that
    every split shares (so that one split of the TIMIT tree is a tree TIMIT tools load), through the split's tar when
    most of it is missing and the tar is smaller than those files plus a REQUEST_COST_BYTES per request (one
    request instead of thousands), unless ``file_by_file``; a few missing or damaged files come one by one."""
    say = Progress(total_bytes=0, total_files=0, enabled=False, stream=stream).note
    files = list_files(server, version, split=split, fmt=fmt, say=say)
    tar = None
    if split and fmt and fmt != PACKAGE:
        shared, tar = split_extras(server, version, split=split, fmt=fmt, say=say)
        files += shared
    outcome = Outcome()
    states = {info["path"]: file_state(info, dest) for info in files}
    needed = [info for info in files if states[info["path"]] != "present"]
    for info in files:
        if states[info["path"]] == "present":
            outcome.add("present", info["path"])
    if not needed or file_by_file or (tar is not None and not _tar_pays(tar, needed, files, dest)):
        tar = None
    if tar is not None:
        bar = Progress(total_bytes=tar["size"], total_files=1, enabled=progress, stream=stream)
        try:
            done = _via_tar(tar, needed, dest, bar)
        finally:
            bar.close()
        outcome.tar = tar["path"]
        for path, what in done.items():
            outcome.add(what, path)
        needed = [info for info in needed if info["path"] not in done]  # anything the tar lacked, one by one
    bar = Progress(
        total_bytes=sum(i["size"] for i in needed), total_files=len(needed), enabled=progress and bool(needed),
        stream=stream,
    )  # fmt: skip
    try:
        for info in needed:
            outcome.add(download_file(info, dest, bar), info["path"])
    finally:
        if needed:
            bar.close()
    return outcome


def _tar_pays(tar: dict, needed: list[dict], files: list[dict], dest: Path) -> bool:
    if (dest / tar["path"]).exists() or (dest / (tar["path"] + ".part")).exists():
        return True  # already here, whole or in part
    one_by_one = sum(info["size"] for info in needed) + len(needed) * REQUEST_COST_BYTES
    return len(needed) * 2 > len(files) and tar["size"] < one_by_one


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openphone.download", description=__doc__.split("\n\n")[1])
    parser.add_argument("version")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--split", choices=["train", "dev", "test"])
    parser.add_argument(
        "--format",
        dest="fmt",
        help="timit, kaldi, lhotse, hf (per split); manifest, datasheet, checksums, delta, metadata (release-wide); "
        "default: the release's tar, or the split's with --split",
    )
    parser.add_argument("--server", default="", help=f"the platform's URL (default: ${SERVER_ENV})")
    parser.add_argument("--files", action="store_true", help="fetch a split's files one by one, not through its tar")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    server = args.server or os.environ.get(SERVER_ENV, "")
    try:
        if not server:
            raise DownloadError(
                f"no server given: pass --server https://openphone.example or set {SERVER_ENV}=https://openphone.example"
            )
        if urllib.parse.urlsplit(server).scheme not in ("http", "https"):
            raise DownloadError(f"the server must be an http:// or https:// URL, not {server!r}")
        outcome = download(
            server,
            args.version,
            args.dest,
            split=args.split,
            fmt=args.fmt,
            progress=not args.quiet,
            file_by_file=args.files,
        )
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.version}: {outcome.summary()}; every checksum verified, in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
