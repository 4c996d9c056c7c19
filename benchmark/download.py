"""python -m benchmark.download VERSION DEST [--split S] [--format F] [--server URL]

Downloads a release's files (by default its tar package, or one split's) over the public API: resumes a partial
file with an HTTP Range request guarded by If-Range (the ETag), verifies each file's SHA-256 against the listing
and shows progress. Standard library only, so researchers need nothing but Python (tqdm when installed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

CHUNK = 1024 * 1024
DEFAULT_SERVER = os.environ.get("OPENPHONE_URL", "http://127.0.0.1:8000")


class DownloadError(Exception):
    """A sentence for the user; the CLI exits non-zero with it."""


def _get_json(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (http(s) URLs we build)
            return json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("message", str(exc))
        except ValueError:
            message = str(exc)
        raise DownloadError(f"{url}: {message}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"cannot reach {url}: {exc.reason}") from exc


def list_files(server: str, version: str, *, split: str | None, fmt: str | None) -> list[dict]:
    query = {k: v for k, v in {"split": split, "format": fmt or "package"}.items() if v}
    url = f"{server.rstrip('/')}/api/v1/releases/{urllib.parse.quote(version)}/files?{urllib.parse.urlencode(query)}"
    files = _get_json(url)["results"]
    if not fmt:  # the package: the split's tar, or the whole release's
        files = [f for f in files if f["split"] == (split or "")]
    if not files:
        raise DownloadError(f"release {version} has no files for split={split or 'all'} format={fmt or 'package'}")
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _progress(total: int, initial: int, name: str):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=name, file=sys.stderr)


def download_file(info: dict, dest: Path, *, progress: bool = True) -> str:
    """Fetch one file to ``dest/path``; returns "present", "resumed" or "downloaded". A partial file is kept as
    ``.part`` and continued from where it stopped; a checksum mismatch removes it and fails."""
    relative = PurePosixPath(info["path"])
    if relative.is_absolute() or ".." in relative.parts:
        raise DownloadError(f"refusing the unsafe path {info['path']!r}")
    target = dest / relative
    if target.exists() and target.stat().st_size == info["size"] and _sha256(target) == info["sha256"]:
        return "present"
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if have > info["size"]:
        part.unlink()
        have = 0
    outcome = "resumed" if have else "downloaded"
    if have < info["size"]:
        request = urllib.request.Request(info["url"])  # noqa: S310
        if have:
            request.add_header("Range", f"bytes={have}-")
            request.add_header("If-Range", f'"{info["sha256"]}"')
        bar = _progress(info["size"], have, relative.name) if progress else None
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                mode = "ab" if response.status == 206 else "wb"
                if response.status == 200:
                    have = 0
                    if bar is not None:
                        bar.reset()
                with part.open(mode) as sink:
                    while chunk := response.read(CHUNK):
                        sink.write(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"{info['url']}: HTTP {exc.code}") from exc
        except urllib.error.URLError as exc:
            raise DownloadError(f"{info['url']}: {exc.reason} (run again to resume)") from exc
        finally:
            if bar is not None:
                bar.close()
    if _sha256(part) != info["sha256"]:
        part.unlink()
        raise DownloadError(f"{info['path']}: checksum mismatch; the partial file was removed, run again")
    part.replace(target)
    return outcome


def download(server: str, version: str, dest: Path, *, split: str | None, fmt: str | None, progress: bool) -> dict:
    files = list_files(server, version, split=split, fmt=fmt)
    outcomes: dict[str, int] = {}
    for info in files:
        outcome = download_file(info, dest, progress=progress)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.download", description=__doc__.splitlines()[2])
    parser.add_argument("version")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--split", choices=["train", "dev", "test"])
    parser.add_argument(
        "--format", dest="fmt", help="manifest, timit, kaldi, lhotse, hf, datasheet, checksums (default: the tar)"
    )
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"default {DEFAULT_SERVER} (or $OPENPHONE_URL)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        outcomes = download(
            args.server, args.version, args.dest, split=args.split, fmt=args.fmt, progress=not args.quiet
        )
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()))
    print(f"{args.version}: {summary}; every checksum verified, in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
