"""manage.py release_build --version V [--limit N] [--async] [--alignments FILE] [--audio-format wav|flac]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from benchmark.models import ReleaseStatus
from benchmark.releases.services import release_build, release_build_enqueue, release_create
from core.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Freeze the valid clips into an immutable release: speaker-disjoint splits (and a hidden test split), "
        "JSONL, TIMIT-like, Kaldi, Lhotse and Parquet exports, a datasheet, SHA256SUMS and tar packages."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # The issue names the option --version; it replaces Django's own (which prints Django's version).
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--version", dest="release_version", required=True, help="e.g. 2025.06 or v1.")
        parser.add_argument("--limit", type=int, help="Take at most this many clips (a quick trial).")
        parser.add_argument("--alignments", default="", help="JSONL of forced alignments: sha256, phones.")
        parser.add_argument(
            "--audio-format", choices=["wav", "flac"], default="", help="The TIMIT tree's audio (default: the setting)."
        )
        parser.add_argument("--async", dest="run_async", action="store_true", help="Build in the Celery worker.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            release = release_create(
                version=options["release_version"],
                limit=options["limit"],
                alignments=options["alignments"],
                audio_format=options["audio_format"],
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        if options["run_async"]:
            release_build_enqueue(release=release)
            self.stdout.write(f"Release {release.version} queued for the worker.")
            return
        verbose = options["verbosity"] >= 1
        built = release_build(release_id=release.pk, progress=self.stdout.write if verbose else None)
        if built is None or built.status != ReleaseStatus.READY:
            reason = built.error if built is not None else "the release row disappeared"
            raise CommandError(f"Release {release.version} failed: {reason}")
        splits = built.facts["splits"]
        self.stdout.write(
            f"Release {built.version} ready: {built.clip_count} clips, {built.speaker_count} speakers, "
            f"{built.hours:.2f} h in {built.build_seconds:.1f} s; "
            + ", ".join(f"{s} {v['clips']} clips/{v['speakers']} speakers" for s, v in splits.items())
            + f"; shared sentences train-test {built.facts['sentence_overlap']['shared_sentences']['train-test']}."
        )
