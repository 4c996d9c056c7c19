"""manage.py corpus_source NAME --licence SPDX --citation TEXT [--url URL]: state an imported corpus's terms."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contributors.models import CorpusSource
from contributors.services.imports import corpus_source_register
from core.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Set the licence (SPDX id), citation and URL of a corpus clips were imported from; releases credit it with "
        "them. A source recorded before imports named their licence (NOASSERTION) must be stated before a release."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--licence", required=True, help="SPDX id, e.g. CC-BY-4.0.")
        parser.add_argument("--citation", required=True, help="How the corpus is cited (BibTeX or a reference).")
        parser.add_argument("--url", default="", help="Where the corpus is published.")

    def handle(self, *args, **options) -> None:
        if not CorpusSource.objects.filter(name=options["name"]).exists():
            known = ", ".join(CorpusSource.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"No clips were imported from {options['name']!r} (sources: {known}).")
        try:
            source, changed = corpus_source_register(
                name=options["name"], licence=options["licence"], citation=options["citation"], url=options["url"]
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        count = source.clips.count()
        self.stdout.write(f"{source.name}: {source.licence}, {count} clips" + ("" if changed else " (unchanged)") + ".")
