"""manage.py prompts_select --target N [--apply] [--source NAME]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contributors.services.prompt_selection import prompts_select_coverage
from core.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Choose up to N diverse prompts that add the most diphones to the shared and coverage prompts (greedy, "
        "TIMIT's SX idea); prints coverage before and after. --apply marks them as coverage prompts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--target", type=int, required=True, help="How many prompts to choose.")
        parser.add_argument("--apply", action="store_true", help="Mark the chosen prompts as coverage prompts.")
        parser.add_argument("--source", help="Choose only among prompts of this source.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            selection = prompts_select_coverage(
                target=options["target"], apply=options["apply"], source=options["source"]
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Coverage before: {selection.before.describe()}")
        for prompt in selection.chosen:
            self.stdout.write(f"  {prompt.pk}\t{prompt.text}")
        self.stdout.write(f"Coverage after:  {selection.after.describe()} with {len(selection.chosen)} prompts chosen")
        if options["apply"]:
            self.stdout.write(f"{len(selection.chosen)} prompts marked as coverage prompts.")
        else:
            self.stdout.write("Nothing changed (use --apply to mark them).")
