"""manage.py import_corpus MANIFEST.tsv --audio-root DIR --source-name NAME --licence SPDX --citation TEXT
[--source-url URL] [--source-file SOURCE.json] [--lexicon FILE] [--validated]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from contributors.services.imports import corpus_import, corpus_source_register, read_source_file
from core.errors import ServiceError
from speech.corpus import ManifestError, read_manifest


class Command(BaseCommand):
    help = (
        "Import an existing corpus (TSV: utt_id speaker gender age audio duration_s text) through the upload "
        "service: speakers become contributors, sentences prompts, files clips. Every clip is credited to the "
        "corpus, named with its licence (SPDX id) and citation; releases list it with both."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("manifest", type=Path)
        parser.add_argument("--audio-root", type=Path, required=True, help="Folder the audio paths are relative to.")
        parser.add_argument("--source-name", default="", help="The corpus's short name, as releases credit it.")
        parser.add_argument("--licence", default="", help="The corpus's licence as an SPDX id, e.g. CC-BY-4.0.")
        parser.add_argument("--citation", default="", help="How the corpus is cited (BibTeX or a reference).")
        parser.add_argument("--citation-file", type=Path, help="The citation read from a file (a .bib entry).")
        parser.add_argument("--source-url", default="", help="Where the corpus is published.")
        parser.add_argument(
            "--source-file",
            type=Path,
            help='JSON {"name", "licence", "url", "citation"} describing the corpus; the flags above override it.',
        )
        parser.add_argument("--lexicon", type=Path, help="WORD PHONES... for words CMUdict lacks.")
        parser.add_argument("--validated", action="store_true", help="Mark clips valid (a curated corpus).")
        parser.add_argument("--accent", default="", help="Accent recorded for every speaker.")
        parser.add_argument("--first-language", default="", help="First language recorded for every speaker.")
        parser.add_argument("--max-duration", type=float, default=30.0, help="Longest clip accepted, seconds.")
        parser.add_argument("--limit", type=int, help="Import at most this many rows.")

    def _source(self, options):
        details = {"name": "", "licence": "", "url": "", "citation": ""}
        try:
            if options["source_file"]:
                details.update(read_source_file(Path(options["source_file"])))
            if options["citation_file"]:
                path = Path(options["citation_file"])
                if not path.is_file():
                    raise CommandError(f"--citation-file {path} does not exist.")
                details["citation"] = path.read_text(encoding="utf-8")
            for key, option in (("name", "source_name"), ("licence", "licence"), ("url", "source_url")):
                details[key] = options[option] or details[key]
            details["citation"] = options["citation"] or details["citation"]
            missing = [flag for key, flag in (("name", "--source-name"), ("licence", "--licence"),
                                              ("citation", "--citation")) if not details[key].strip()]  # fmt: skip
            if missing:
                raise CommandError(
                    f"Say where the corpus comes from: {', '.join(missing)} missing (or give --source-file). "
                    "Releases credit every imported corpus with its licence and citation."
                )
            return corpus_source_register(**details)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc

    def handle(self, *args, **options) -> None:
        manifest = Path(options["manifest"])
        audio_root = Path(options["audio_root"])
        lexicon = Path(options["lexicon"]) if options["lexicon"] else None
        if not audio_root.is_dir():
            raise CommandError(f"--audio-root {audio_root} is not a folder.")
        try:
            total = sum(1 for _ in read_manifest(manifest))
        except ManifestError as exc:
            raise CommandError(str(exc)) from exc
        if options["limit"] is not None:
            total = min(total, options["limit"])
        source, changed = self._source(options)
        if changed:
            self.stdout.write(f"Source {source.name}: {source.licence}, {source.url or 'no URL'}.")
        try:
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
