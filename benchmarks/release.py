"""Benchmark: building and packaging a release, against GNU ``tar`` of the same files in the same run.

Usage::

    .venv/bin/python benchmarks/release.py [--limit N] [--repeat R]

Imports ``../shared/data/speechocean762-train`` with ``--validated`` into a fresh SQLite database in a temporary
DATA_DIR (so nothing of yours is touched), then builds releases with ``release_build`` ``--repeat`` times
(default 3; each a new version, the speakers keeping their splits). Rows:

1. **release_build**: the whole build (freeze the manifest and write the TIMIT tree's audio, forced alignment,
   text exports, Parquet, datasheet and plots, SHA256SUMS, the full and per-split tars, publish, rows); MB/s
   counts every byte published. The forced alignment (an HMM trained on the release) is reported on a line of
   its own, and the build is also given without it, as the packaging work the tar peer compares to: for the
   first release (every clip's FLAC decoded into its WAV) and for the later ones (which copy the previous
   release's verified WAV of each clip they publish again), each against the tar of its own run.
2. **packaging**: the builder's streamed, deterministic tars alone (whole release and each split), MB/s of tar
   output.
3. **cp -r**: GNU cp of the published tree (17,500 files and the tars), a peer that writes what the build writes
   (but neither makes, hashes nor packs it).
4. **tar -cf**: GNU tar of the same public content files into one archive (the peer of the issue's target).

"vs tar" is a row's MB/s over ``tar -cf``'s, the median and the fastest of its ``PEER_RUNS`` runs after each build.
Every timed row starts after ``sync``. For figures that compare the code rather than the disk, run it with
``TMPDIR=/dev/shm`` (tmpfs): on the development VM's ext4 (mounted with ``discard``) creating 15,000 small files
took 0.2-0.6 s, or 2-4 s just after as many had been deleted, and the same tar run 0.34 s to 1.9 s (session 14).
The page cache is warm for every row alike (the files were just written), as it is for a builder that has just
copied the clips.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# tar runs after each build; both the median and the fastest are reported, the fastest being the harder peer.
PEER_RUNS = 3
SHARED = Path(os.environ.get("SHARED_DATA_DIR", ROOT.parent / "shared" / "data")) / "speechocean762-train"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="Import at most this many clips.")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not (SHARED / "manifest.tsv").is_file():
        print(f"{SHARED} is absent: this benchmark needs the shared speechocean762 half.", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-release-") as data_dir:
        os.environ.update(
            DATA_DIR=data_dir, CELERY_BROKER_URL="memory://", DATABASE_URL=f"sqlite:///{data_dir}/db.sqlite3"
        )
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from benchmark.releases.services import release_build, release_create
        from contributors.services.imports import SPEECHOCEAN762_SOURCE

        call_command("migrate", verbosity=0)
        started = time.monotonic()
        call_command(
            "import_corpus", str(SHARED / "manifest.tsv"), audio_root=str(SHARED), lexicon=str(SHARED / "lexicon.txt"),
            source_file=str(SPEECHOCEAN762_SOURCE), validated=True, verbosity=0,
            **({"limit": args.limit} if args.limit else {}),
        )  # fmt: skip
        print(f"imported in {time.monotonic() - started:.1f} s", file=sys.stderr)

        builds, packs, tars, aligns, phases, copies = [], [], [], [], [], []
        outputs = Path(data_dir) / "peers"
        outputs.mkdir()
        for index in range(args.repeat):
            release = release_create(version=f"bench{index}")
            os.sync()
            tick = time.monotonic()
            release = release_build(release_id=release.pk, progress=lambda _m: None)
            seconds = time.monotonic() - tick
            assert release.status == "ready", release.error
            facts = release.facts
            root = Path(settings.MEDIA_ROOT) / release.storage_prefix
            package_bytes = sum(f.size for f in release.files.filter(format="package"))
            builds.append((facts["bytes"]["total"], seconds))
            aligns.append((facts["bytes"]["total"], seconds - facts["timings"]["align_s"], facts["timings"]["align_s"]))
            packs.append((package_bytes, facts["timings"]["packages_s"]))
            phases.append(facts["timings"])
            content = sorted(
                p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.parts[-2] != "packages"
            )
            listing = Path(data_dir) / "files.txt"
            listing.write_text("\n".join(content) + "\n")
            runs = []
            out = outputs / "peer.tar"
            for _ in range(PEER_RUNS):
                os.sync()
                tick = time.monotonic()
                subprocess.run(["tar", "-cf", str(out), "-C", str(root), "-T", str(listing)], check=True)
                runs.append((out.stat().st_size, time.monotonic() - tick))
                out.unlink()
            tars.append(runs)
            os.sync()
            tick = time.monotonic()
            subprocess.run(["cp", "-r", str(root), str(outputs / "copy")], check=True)
            copies.append((facts["bytes"]["total"], time.monotonic() - tick))
            shutil.rmtree(outputs / "copy")
            clips = release.clip_count
        shutil.rmtree(outputs)
        shutil.rmtree(Path(settings.MEDIA_ROOT) / "releases", ignore_errors=True)

    def rate(rows: list[tuple[int, float]]) -> tuple[float, float, float]:
        mb = statistics.median(b for b, _ in rows) / 1e6
        s = statistics.median(t for _, t in rows)
        return mb, s, mb / s

    def peer(runs: list[list[tuple[int, float]]]) -> tuple[float, float]:
        """(median, fastest) MB/s of the peer's runs after the builds ``runs`` come from."""
        rates = [b / 1e6 / t for after_build in runs for b, t in after_build]
        return statistics.median(rates), max(rates)

    machine = platform.processor() or platform.machine()
    print(f"\nMachine: {machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"Release of {clips} clips; median of {args.repeat} runs (the first release and the later ones apart: each")
    print("against the tar of its own runs).\n")
    print("| row | MB | s | MB/s | vs tar (median) | vs tar (fastest) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    less = [(b, s) for b, s, _ in aligns]
    for name, rows, peers in [
        ("release_build (everything)", builds, tars),
        ("release_build less the alignment", less, tars),
        ("... the first release (every WAV decoded)", less[:1], tars[:1]),
        ("... later releases (WAVs copied)", less[1:], tars[1:]),
        ("packaging (streamed tars)", packs, tars),
        ("cp -r of the published tree", copies, tars),
        ("tar -cf (peer)", [run for after_build in tars for run in after_build], tars),
    ]:
        if rows:
            mb, s, r = rate(rows)
            median, fastest = peer(peers)
            print(f"| {name} | {mb:,.0f} | {s:.2f} | {r:,.0f} | {r / median:.2f} | {r / fastest:.2f} |")
    times = ", ".join("/".join(f"{t:.2f}" for _, t in after_build) for after_build in tars)
    print(f"\nThe peer's runs after each build (s): {times}.")
    later = ""
    if len(aligns) > 1:
        median_later = statistics.median(a for *_, a in aligns[1:])
        later = f", later releases (the previous one's HMM re-estimated) median {median_later:.1f} s"
    print(f"\nForced alignment of every clip: the first release (a flat-start HMM) {aligns[0][2]:.1f} s{later}.")
    print("\nThe build's phases (median s): " + ", ".join(
        f"{name} {statistics.median(p.get(name, 0.0) for p in phases):.2f}" for name in phases[0]
    ))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
