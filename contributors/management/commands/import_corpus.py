"""manage.py import_corpus MANIFEST.tsv --audio-root DIR [--lexicon FILE] [--validated]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from contributors.services.imports import ManifestError, corpus_import, read_manifest


class Command(BaseCommand):
    help = (
        "Import an existing corpus (TSV: utt_id speaker gender age audio duration_s text) through the upload "
        "service: speakers become contributors, sentences prompts, files clips."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("manifest", type=Path)
        parser.add_argument("--audio-root", type=Path, required=True, help="Folder the audio paths are relative to.")
        parser.add_argument("--lexicon", type=Path, help="WORD PHONES... for words CMUdict lacks.")
        parser.add_argument("--validated", action="store_true", help="Mark clips valid (a curated corpus).")
        parser.add_argument("--source", default="", help="Corpus name (default: the manifest's folder name).")
        parser.add_argument("--accent", default="", help="Accent recorded for every speaker.")
        parser.add_argument("--first-language", default="", help="First language recorded for every speaker.")
        parser.add_argument("--max-duration", type=float, default=30.0, help="Longest clip accepted, seconds.")
        parser.add_argument("--limit", type=int, help="Import at most this many rows.")

    def handle(self, *args, **options) -> None:
        manifest = Path(options["manifest"])
        audio_root = Path(options["audio_root"])
        lexicon = Path(options["lexicon"]) if options["lexicon"] else None
        if not audio_root.is_dir():
            raise CommandError(f"--audio-root {audio_root} is not a folder.")
        source = options["source"] or manifest.resolve().parent.name
        try:
            total = sum(1 for _ in read_manifest(manifest))
            if options["limit"] is not None:
                total = min(total, options["limit"])
            with tqdm(total=total, unit="clip", disable=options["verbosity"] == 0) as bar:

                def on_row(utt_id: str, error: str | None) -> None:
                    bar.update(1)
                    if error:
                        bar.write(f"skipped {utt_id}: {error}")

                report = corpus_import(
                    manifest=manifest,
                    audio_root=audio_root,
                    source=source,
                    lexicon=lexicon,
                    validated=options["validated"],
                    accent=options["accent"],
                    first_language=options["first_language"],
                    max_duration_s=options["max_duration"],
                    limit=options["limit"],
                    on_row=on_row,
                )
        except ManifestError as exc:
            raise CommandError(str(exc)) from exc

        self.stdout.write(
            f"{report.rows} rows: {report.imported} imported, {report.already_present} already present, "
            f"{len(report.failures)} skipped; {report.contributors_created} new contributors, "
            f"{report.prompts_created} new prompts, {report.lexicon_entries} lexicon entries."
        )
        if report.failures and report.imported + report.already_present == 0:
            raise CommandError("No row could be imported; see the reasons above.")
