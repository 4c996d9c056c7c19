"""manage.py prompts_import FILE [--type shared|coverage|diverse] [--source NAME]"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contributors.models import PromptType
from contributors.services.prompt_selection import prompts_import
from core.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Import prompts: one sentence a line, or TSV 'text<TAB>type'. Each is normalised (numbers spelled out, "
        "punctuation, case) and pronounced (operator lexicon, then CMUdict); lines with unknown words are "
        "reported with the words named and skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--type", dest="prompt_type", choices=PromptType.values, default=PromptType.DIVERSE)
        parser.add_argument("--source", default="", help="Where the sentences come from (default: the file name).")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])

        def on_line(number: int, error: str | None) -> None:
            if error:
                self.stderr.write(f"line {number}: {error}")

        try:
            report = prompts_import(
                path=path, prompt_type=options["prompt_type"], source=options["source"], on_line=on_line
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"{report.lines} lines: {report.created} prompts created, {report.existing} already present, "
            f"{len(report.failures)} refused."
        )
        if report.failures and report.created + report.existing == 0:
            raise CommandError("No line could be imported; see the reasons above.")
