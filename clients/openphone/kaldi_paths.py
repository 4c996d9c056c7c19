"""python -m openphone.kaldi_paths RELEASE_ROOT OUT_DIR [--split S ...]

A release's Kaldi data directories with absolute audio paths: ``kaldi/SPLIT/wav.scp`` names files relative to the
release root (so an unpacked release works wherever it lies); a recipe that runs elsewhere wants them absolute.
Copies each ``kaldi/SPLIT/`` (and ``dict/``, ``lang/``) to ``OUT_DIR/`` with ``wav.scp`` rewritten, leaving the
release, and so its checksums, untouched. Standard library only.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

SPLITS = ("train", "dev", "test")


def absolute_entry(entry: str, root: Path) -> str:
    """One ``wav.scp`` value: a path (``timit/...WAV``) or a pipe (``flac -c -d -s timit/... |``), made absolute."""
    if entry.endswith("|"):
        words = entry.split()
        words[-2] = str(root / words[-2])  # the file is the pipe's last argument
        return " ".join(words)
    return str(root / entry)


def write_absolute(release_root: Path, out: Path, splits: list[str] | None = None) -> list[Path]:
    root = release_root.resolve()
    kaldi = root / "kaldi"
    if not kaldi.is_dir():
        raise FileNotFoundError(f"{kaldi} does not exist: is {release_root} an unpacked release (or a split's tar)?")
    chosen = [s for s in (splits or SPLITS) if (kaldi / s).is_dir()]
    if not chosen:
        raise FileNotFoundError(f"{kaldi} has none of the splits {', '.join(splits or SPLITS)}.")
    written = []
    for name in [*chosen, "dict", "lang"]:
        source = kaldi / name
        if not source.is_dir():
            continue
        target = out / name
        shutil.copytree(source, target, dirs_exist_ok=True)
        scp = target / "wav.scp"
        if scp.is_file():
            lines = []
            for line in (source / "wav.scp").read_text(encoding="utf-8").splitlines():
                utt, _, entry = line.partition(" ")
                lines.append(f"{utt} {absolute_entry(entry, root)}\n")
            scp.write_text("".join(lines), encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openphone.kaldi_paths", description=__doc__.split("\n\n")[1])
    parser.add_argument("release_root", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--split", action="append", choices=SPLITS, help="only this split (repeatable)")
    args = parser.parse_args(argv)
    try:
        written = write_absolute(args.release_root, args.out, args.split)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {', '.join(str(p) for p in written)} with absolute audio paths")
    return 0


if __name__ == "__main__":
    sys.exit(main())
